package http

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	accepted, rejected, deduplicated *prometheus.CounterVec
	rejectedReq                      prometheus.Counter
	requests                         *prometheus.CounterVec
	duration                         *prometheus.HistogramVec
	rateLimited                      *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, s *Server) *metrics {
	m := &metrics{
		accepted:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portrait_events_accepted_total", Help: "Events accepted into the log."}, []string{"source"}),
		rejected:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portrait_events_rejected_total", Help: "Events rejected and quarantined."}, []string{"source"}),
		deduplicated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portrait_events_deduplicated_total", Help: "Events dropped as retries of an accepted messageId."}, []string{"source"}),
		rejectedReq:  prometheus.NewCounter(prometheus.CounterOpts{Name: "portrait_requests_unreadable_total", Help: "Tracking requests whose body could not be read (size, encoding)."}),
		rateLimited:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portrait_http_rate_limited_total", Help: "Requests refused with 429 because their key was over its rate."}, []string{"kind"}),
		requests:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portrait_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "portrait_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"route"}),
	}
	reg.MustRegister(m.rateLimited)
	reg.MustRegister(m.accepted, m.rejected, m.deduplicated, m.rejectedReq, m.requests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if s.Lag != nil {
		// NaN when the lag cannot be read: a 0 would say caught up.
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portrait_processing_lag_events", Help: "Events in the log not yet applied to profiles (NaN: could not be read)."},
			func() float64 {
				n, _, err := s.Lag()
				if err != nil {
					return math.NaN()
				}
				return float64(n)
			}))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portrait_processing_lag_seconds", Help: "Age of the oldest event not yet applied to profiles (0 when caught up, NaN: could not be read)."},
			func() float64 {
				_, secs, err := s.Lag()
				if err != nil {
					return math.NaN()
				}
				return secs
			}))
	}
	return m
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers (server-sent events) flush through the
// instrumentation wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
