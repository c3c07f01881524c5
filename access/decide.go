package access

// Mode is how a repository's previews are opened.
type Mode string

// The access modes.
const (
	Public   Mode = "public"
	GitHub   Mode = "github"
	Password Mode = "password"
)

// evidence is what one request carries towards access to a preview.
type evidence struct {
	// Bypass is the bypass header's verdict.
	Bypass credential
	// Grant is the verdict on the grant cookies (password, token, share
	// link) for the preview's repository or pull request.
	Grant credential
	// Session is the verdict on the GitHub session cookie.
	Session credential
	// Permission is what the cached permission says of the session's user
	// on the repository (only asked with a valid session in github mode).
	Permission permission
	// login is the session's GitHub user (for the permission and the
	// refusal page); decide does not look at it.
	login string
	// others are the further valid sessions' users the request carried
	// (a preview's page can plant a session of its author's for the
	// domain, which the browser may send first).
	others []string
}

// credential is the verdict on one credential of a request.
type credential int

const (
	absent  credential = iota // not sent
	invalid                   // sent, but forged, tampered, expired, revoked or for another preview
	valid
)

// permission is the cached answer to "may this user see this repository".
type permission int

const (
	permUnknown permission = iota // not asked
	permAllowed
	permDenied
	permError // GitHub could not be asked and nothing is cached
)

// verdict is what the gate does with a request.
type verdict int

const (
	admit          verdict = iota // forward it (credentials stripped)
	signIn                        // redirect to the GitHub sign-in
	askPassword                   // show the password form
	refuse                        // 403: signed in, but no access to the repository
	refuseBypass                  // 401: a bypass token was sent and refused
	unavailable                   // 503: the permission could not be checked
	needPermission                // ask the permission cache, then decide again
)

// decide is the gate's whole policy. A bypass header that is sent but
// refused is always an error (a test runner must see it at once, not a
// sign-in page); a valid grant or bypass opens any private preview it is
// for; github mode wants a session of a user with read access.
func decide(mode Mode, ev evidence) verdict {
	if mode == Public {
		return admit
	}
	switch ev.Bypass {
	case valid:
		return admit
	case invalid:
		return refuseBypass
	}
	if ev.Grant == valid {
		return admit
	}
	switch mode {
	case Password:
		return askPassword
	case GitHub:
		if ev.Session != valid {
			return signIn
		}
		switch ev.Permission {
		case permUnknown:
			return needPermission
		case permAllowed:
			return admit
		case permDenied:
			return refuse
		default:
			return unavailable
		}
	}
	return refuse // an unknown mode never opens
}
