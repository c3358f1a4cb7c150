package config

import (
	"fmt"
	"strings"
)

// Reference renders the key table as the config reference in docs/config.md.
func Reference() string {
	var b strings.Builder
	b.WriteString("| key | targets | type | default | meaning |\n| --- | --- | --- | --- | --- |\n")
	for _, k := range Keys {
		targets := "all"
		if k.Targets != nil {
			parts := make([]string, len(k.Targets))
			for i, t := range k.Targets {
				parts[i] = string(t)
			}
			targets = strings.Join(parts, ", ")
		}
		def := k.Default
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", ShortName(k.Name), targets, k.Type, def, strings.ReplaceAll(k.Doc, "|", `\|`))
	}
	return b.String()
}
