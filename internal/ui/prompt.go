package ui

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Ask prints question on stderr and reads one line; an empty answer gives def.
func Ask(s *Streams, question, def string) (string, error) {
	fmt.Fprint(s.Err, question)
	line, err := bufio.NewReader(s.In).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("read answer: %w", err)
	}
	if line = strings.TrimSpace(line); line == "" {
		return def, nil
	}
	return line, nil
}

// Choose asks for one of options, by number or name.
func Choose(s *Streams, question string, options []string, def string) (string, error) {
	fmt.Fprintln(s.Err, question)
	for i, o := range options {
		fmt.Fprintf(s.Err, "  %d) %s\n", i+1, o)
	}
	for range 3 {
		ans, err := Ask(s, fmt.Sprintf("choice [%s]: ", def), def)
		if err != nil {
			return "", err
		}
		for i, o := range options {
			if ans == o || ans == fmt.Sprint(i+1) {
				return o, nil
			}
		}
		fmt.Fprintf(s.Err, "%q is not one of the choices\n", ans)
	}
	return "", fmt.Errorf("no valid choice for %q", question)
}
