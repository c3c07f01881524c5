package controller

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's Prometheus series.
type metrics struct {
	reconcile     prometheus.Histogram
	buildSeconds  prometheus.Histogram
	deploySeconds prometheus.Histogram
	downSeconds   prometheus.Histogram
	builds        prometheus.Counter
	failures      *prometheus.CounterVec
	events        *prometheus.CounterVec
	phases        *prometheus.GaugeVec

	mu     sync.Mutex
	byProj map[string]string
}

func newMetrics(reg prometheus.Registerer, q *Queue) (*metrics, error) {
	buckets := []float64{0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200}
	m := &metrics{
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slipway_reconcile_duration_seconds",
			Help: "Time one reconcile of a pull request took.", Buckets: buckets}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slipway_build_duration_seconds",
			Help: "Time from the start of a deploy to the end of its image builds.", Buckets: buckets}),
		deploySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slipway_deploy_duration_seconds",
			Help: "Time from the start of a deploy until the environment was ready.", Buckets: buckets}),
		downSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slipway_teardown_duration_seconds",
			Help: "Time to remove an environment.", Buckets: buckets}),
		builds: prometheus.NewCounter(prometheus.CounterOpts{Name: "slipway_builds_total",
			Help: "Deploys that started building."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slipway_deploy_failures_total",
			Help: "Failed deploys by the step that failed."}, []string{"step"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slipway_controller_events_total",
			Help: "Webhook events handed to the controller, by kind."}, []string{"kind"}),
		phases: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slipway_environments",
			Help: "Environments by phase (as last recorded by this process)."}, []string{"phase"}),
		byProj: map[string]string{},
	}
	if reg == nil {
		return m, nil
	}
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "slipway_queue_depth",
		Help: "Pull requests waiting in the work queue."}, func() float64 { return float64(q.Len()) })
	for _, c := range []prometheus.Collector{m.reconcile, m.buildSeconds, m.deploySeconds, m.downSeconds, m.builds, m.failures, m.events, m.phases, depth} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// setPhase moves project to phase in the environments gauge.
func (m *metrics) setPhase(project, phase string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byProj[project]; ok {
		m.phases.WithLabelValues(old).Dec()
	}
	if phase == "removed" {
		delete(m.byProj, project)
		return
	}
	m.byProj[project] = phase
	m.phases.WithLabelValues(phase).Inc()
}
