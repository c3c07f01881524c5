// Package proxy is Slipway's preview proxy: it routes pr-N hostnames to
// their containers.
//
// The pieces, in the order a request meets them:
//
//   - Observer follows the Docker engine (a list, then the events stream)
//     and turns managed containers into plain Container values.
//   - Routes holds those and the states the controller publishes
//     (SetState/ClearState); on every change it recomputes the table with
//     the pure ComputeTable and swaps it in atomically, so the request
//     path takes no lock. A container's route enters the table only when
//     its host is one Slipway declared for that pull request (HostOwner:
//     the repository's host templates for its own number); refused routes
//     and the hosts two projects claim are Problems, logged and shown on
//     the dashboard.
//   - Handler looks the request's Host up and proxies it (websockets, event
//     streams, streamed uploads) or answers with a status page. The
//     proxying (forward.go) is a lean loop over net/http's server and
//     parser with httputil.ReverseProxy's rules, and the transport
//     (transport.go) answers bodiless GET and HEAD requests on the calling
//     goroutine over pooled keep-alive connections, handing everything else
//     to http.Transport.
//   - TLS manages certificates with certmagic (on-demand, decided by the
//     live table, or one wildcard through DNS-01).
//   - Server runs the HTTP and HTTPS listeners and sends preview hosts to
//     the Handler and every other Host to the caller's control surface.
//
// The design follows traefik's docker provider (observe, then compute with
// a pure function) and caddy's reverse proxy (tracked hijacked
// connections, errors turned into status codes only at the boundary).
package proxy
