// Package access issues and checks participant tokens: who may do what in
// which room, until when.
//
// A token is a JWT (RFC 7519) signed with HMAC-SHA256 under a key the
// server and the app's backend share. Its claims name one room ("room"),
// one identity ("sub"), what the holder may do ("grants": listen, speak,
// moderate), a unique id ("jti"), when it was issued ("iat") and when it
// expires ("exp"); "iss" is the Authority's issuer. Optionally, it is
// bound to one instance of its room ("rin": a room deleted and created
// again with the same id refuses it) and may be used a number of times
// ("uses": Use counts joins, ErrUsedUp past it). The backend mints
// tokens with Authority.Issue, or offline with any JWT library and the
// same key (the README shows the recipe), and hands one to each person
// who enters a room.
//
// The Authority also keeps what a signature cannot say: tokens revoked
// before they expire (Revoke, by id), identities banned from a room for a
// while (Ban, after a kick) and the uses of use-limited tokens (Use). The
// lists forget entries once they no longer matter, and are bounded.
//
// Time is explicit: Issue and Verify take now, so tests and callers drive
// the clock.
package access
