package webhooks

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes, the values of the outcome label of slipway_webhook_deliveries_total.
const (
	OutcomeAccepted     = "accepted"     // 202, event enqueued
	OutcomeDuplicate    = "duplicate"    // 200, delivery seen before
	OutcomePing         = "ping"         // 200
	OutcomeIgnored      = "ignored"      // 202, event or action not handled
	OutcomeUnauthorized = "unauthorized" // 401, missing or wrong signature
	OutcomeTooLarge     = "too_large"    // 413
	OutcomeMalformed    = "malformed"    // 400
	OutcomeUnsupported  = "unsupported"  // 405 or 415
	OutcomeForbidden    = "forbidden"    // 403, repository not configured
	OutcomeUnavailable  = "unavailable"  // 503, delivery log failed or enqueuer stuck
)

const (
	metricNamespace = "slipway"
	metricSubsystem = "webhook"
	// kindOther is the event label of every kind the handler does not act on.
	kindOther = "other"
)

type metrics struct {
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricNamespace,
			Subsystem: metricSubsystem,
			Name:      "deliveries_total",
			Help:      "GitHub webhook deliveries by event (ping, pull_request, issue_comment or other) and outcome.",
		}, []string{"event", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricNamespace,
			Subsystem: metricSubsystem,
			Name:      "handling_seconds",
			Help:      "Time from receiving a GitHub webhook delivery to answering it.",
			Buckets:   []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"event"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.deliveries, err = register(reg, m.deliveries)
	if err != nil {
		return nil, err
	}
	m.latency, err = register(reg, m.latency)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the identical collector already
// registered (a second handler on the same registry shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// metricKind bounds the event label: the header is read before the signature
// is checked, so an attacker could otherwise create any number of series.
func metricKind(kind string) string {
	switch kind {
	case KindPing, KindPullRequest, KindIssueComment:
		return kind
	}
	return kindOther
}
