package proxy

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	requests     *prometheus.CounterVec
	duration     prometheus.Histogram
	certOrders   prometheus.Counter
	certFailures prometheus.Counter
}

// NewMetrics creates the proxy's metrics and registers them on reg:
//
//	slipway_proxy_requests_total{project,class}   requests by environment and status class (1xx…5xx)
//	slipway_proxy_request_duration_seconds        time to the end of each proxied or answered request
//	slipway_proxy_certificate_orders_total        certificate orders started
//	slipway_proxy_certificate_failures_total      certificate orders that failed
//
// Requests for hosts without an environment count under project "unknown".
// A project's series are deleted when it leaves the route table.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_proxy_requests_total",
			Help: "Requests to preview hosts, by environment (project) and status class.",
		}, []string{"project", "class"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slipway_proxy_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, for preview hosts.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		certOrders: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slipway_proxy_certificate_orders_total",
			Help: "Certificate orders started with the ACME CA.",
		}),
		certFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slipway_proxy_certificate_failures_total",
			Help: "Certificate orders that failed.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.certOrders, m.certFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register proxy metrics: %w", err)
		}
	}
	return m, nil
}

// statusClasses are the values of the class label, indexed by statusClass.
var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// statusClass returns the index in statusClasses of code's class; anything
// outside 100–599 counts as 5xx.
func statusClass(code int) int {
	c := code/100 - 1
	if c < 0 || c >= len(statusClasses) {
		return len(statusClasses) - 1
	}
	return c
}

// projectCounters returns the request counters of project, one per class.
func (m *Metrics) projectCounters(project string) *[len(statusClasses)]prometheus.Counter {
	if m == nil {
		return nil
	}
	var out [len(statusClasses)]prometheus.Counter
	for i, cl := range statusClasses {
		out[i] = m.requests.WithLabelValues(project, cl)
	}
	return &out
}

func (m *Metrics) deleteProject(project string) {
	if m == nil {
		return
	}
	m.requests.DeletePartialMatch(prometheus.Labels{"project": project})
}

func (m *Metrics) observeDuration(seconds float64) {
	if m == nil {
		return
	}
	m.duration.Observe(seconds)
}

func (m *Metrics) certOrder() {
	if m != nil {
		m.certOrders.Inc()
	}
}

func (m *Metrics) certFailure() {
	if m != nil {
		m.certFailures.Inc()
	}
}
