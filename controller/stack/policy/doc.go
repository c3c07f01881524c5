// Package policy is Slipway's compose security policy: the rules a pull
// request's compose project must pass before Slipway makes a single engine
// call for it.
//
// A PR is untrusted code, and the compose file is part of it. One line of it
// — a bind mount of the Docker socket, privileged: true, network_mode: host —
// would turn a preview host into the PR author's root shell. The policy runs
// in two phases, both pure functions of the checkout on disk (no Docker):
//
//   - PreLoad scans the raw YAML of the compose files, and of the files they
//     include or extend within the checkout, for paths compose-go would read
//     while loading (include, extends.file, env_file, label_file, .env): a
//     hostile file could otherwise make the loader read host files.
//   - Check inspects the loaded *types.Project for everything else: privilege,
//     host namespaces, devices, bind mounts, volumes, networks, builds,
//     reserved labels and names, image references (and, in the Dockerfiles
//     built from the checkout, what the builder would pull or download),
//     and the size of the project as a whole.
//
// Both return every violation at once, each naming the rule, the service (or
// top-level key), the field and the offending value. The rules are listed by
// Rules and documented in docs/security.md, which a test keeps in step with
// the code. The operator (never the PR) relaxes rules per repository through
// Options, which mirror config.Policy.
package policy
