package access_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/handsup-audio/handsup/access"
)

// The app's backend issues a listener a token for one room; the server
// verifies it when the listener joins, and refuses it once revoked.
func Example() {
	a, _ := access.New(access.Config{Key: []byte("a 32-byte key shared with the app")})
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

	token, issued, _ := a.Issue(access.Claims{
		Room: "demo", Identity: "lena", Grants: []access.Grant{access.Listen},
	}, now, time.Hour)

	c, err := a.Verify(token, now.Add(time.Minute))
	fmt.Println(c.Identity, c.Room, c.Has(access.Listen), c.Has(access.Speak), err)

	_ = a.Revoke(issued.ID, issued.ExpiresAt, now)
	_, err = a.Verify(token, now.Add(2*time.Minute))
	fmt.Println(errors.Is(err, access.ErrRevoked))
	// Output:
	// lena demo true false <nil>
	// true
}
