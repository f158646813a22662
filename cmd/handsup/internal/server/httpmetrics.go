package server

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// instrumentHTTP counts the requests h serves and times them
// (handsup_http_requests_total{code,method,route} and
// handsup_http_request_duration_seconds{method,route}), through
// client_golang's promhttp. The route is the pattern the mux matched
// (/v1/rooms/{room}, never the raw path), so the labels stay bounded;
// requests that match none count as "unmatched".
func instrumentHTTP(reg prometheus.Registerer, h http.Handler) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handsup_http_requests_total",
		Help: "HTTP requests answered, by status code, method and route (the matched pattern, e.g. /v1/rooms/{room}; unmatched for none).",
	}, []string{"code", "method", "route"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "handsup_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests, by method and route. An event stream (/v1/rooms/{room}/events) lasts as long as its client listens.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"method", "route"})
	reg.MustRegister(requests, duration)
	route := promhttp.WithLabelFromRequest("route", routeOf)
	return promhttp.InstrumentHandlerCounter(requests,
		promhttp.InstrumentHandlerDuration(duration, h, route), route)
}

// routeOf is the request's route once the mux has matched it: the pattern
// without its method.
func routeOf(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = p[i+1:]
	}
	if p == "" {
		return "unmatched"
	}
	return p
}
