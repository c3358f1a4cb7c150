package registry

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestHtpasswdLine: the entry is a bcrypt hash the registry accepts (checked
// with golang.org/x/crypto/bcrypt, which CNCF distribution uses), the same
// for the same password, different for another, and wrong passwords fail.
func TestHtpasswdLine(t *testing.T) {
	line := htpasswdLine("liftoff", "s3cretPassw0rdOfThirtyTwoLetters")
	user, hash, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
	if !ok || user != "liftoff" || !strings.HasPrefix(hash, "$2a$10$") || len(hash) != 60 {
		t.Fatalf("line %q", line)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cretPassw0rdOfThirtyTwoLetters")); err != nil {
		t.Errorf("bcrypt rejects its own password: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cretPassw0rdOfThirtyTwoLetterz")); err == nil {
		t.Error("bcrypt accepts a wrong password")
	}
	if htpasswdLine("liftoff", "s3cretPassw0rdOfThirtyTwoLetters") != line {
		t.Error("the same password gave another line")
	}
	if htpasswdLine("liftoff", "anotherPassword0fThirtyTwoLetter") == line {
		t.Error("another password gave the same line")
	}
}
