package engine

import "fmt"

// Role is what a participant may do in a room.
type Role uint32

const (
	// Listener hears the room and never contributes; audio it sends is
	// dropped and counted.
	Listener Role = iota
	// Speaker contributes and hears everyone but themself.
	Speaker
	// Moderator is a speaker with moderator rights (the server enforces them).
	Moderator
	numRoles
)

// Roles lists every role, for exporters that pre-create labels.
func Roles() []Role { return []Role{Listener, Speaker, Moderator} }

// Contributes reports whether the role's audio goes into the mix.
func (r Role) Contributes() bool { return r == Speaker || r == Moderator }

func (r Role) String() string {
	switch r {
	case Listener:
		return "listener"
	case Speaker:
		return "speaker"
	case Moderator:
		return "moderator"
	}
	return fmt.Sprintf("role(%d)", uint32(r))
}

// ParseRole reads "listener", "speaker" or "moderator".
func ParseRole(s string) (Role, error) {
	switch s {
	case "listener":
		return Listener, nil
	case "speaker":
		return Speaker, nil
	case "moderator":
		return Moderator, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrBadRole, s)
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
