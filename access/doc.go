// Package access is the gate in front of private previews: who may open a
// preview, decided on every request before the proxy forwards it.
//
// A repository's previews are public (anyone who knows the host), github
// (people signed in with GitHub who can read the repository) or password
// (a shared password). The gate reads Slipway's own credentials from the
// request (a signed session cookie, a signed grant cookie, a bypass token
// header) and removes every one of them before the request goes on, so no
// credential of Slipway's ever reaches a preview. GitHub is never asked on
// the hot path: a user's permission is cached briefly (Options.PermissionTTL)
// and refreshed in the background.
//
// What to do with a request is decided by decide, a pure function of the
// access mode and the evidence the request carries; the Gate gathers the
// evidence and carries the verdict out.
package access
