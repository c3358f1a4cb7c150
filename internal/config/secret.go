package config

// Secret holds a secret value. It prints as [secret] in every format.
type Secret struct {
	value string
	set   bool
	known bool
}

// NewSecret wraps a known secret value.
func NewSecret(v string) Secret { return Secret{value: v, set: v != "", known: true} }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s.set }

// Known reports whether the plaintext is available (only inside the engine or after config set).
func (s Secret) Known() bool { return s.known }

// Reveal returns the plaintext. Callers must not print it.
func (s Secret) Reveal() string { return s.value }

func (s Secret) String() string               { return "[secret]" }
func (s Secret) GoString() string             { return "[secret]" }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"[secret]"`), nil }
