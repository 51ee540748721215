package testmodel

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxBody bounds request bodies; test payloads are far smaller.
const maxBody = 64 << 20

// errorFormat renders an error body the way a protocol's real server does,
// so clients under test parse the same shapes they will meet in production.
type errorFormat func(status int, msg string) []byte

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	// Every seldon node route answers whatever the server's Role: the
	// executor picks the part by the route it calls.
	seldon := func(path string, answer func(name, image string, body []byte) ([]byte, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			s.inferNode(w, r, seldonError,
				func(body []byte) nodeTriggers { return seldonTriggers(s.model, body) },
				func(body []byte) ([]byte, error) { return answer(s.model, s.image, body) })
		})
	}
	seldon("/predict", SeldonPredictWithImage)
	// The executor's external path, so the sidecar can be pointed at either.
	seldon("/api/v1.0/predictions", SeldonPredictWithImage)
	seldon("/transform-input", SeldonTransformInput)
	seldon("/transform-output", SeldonTransformOutput)
	seldon("/route", SeldonRoute)
	seldon("/aggregate", SeldonAggregate)
	mux.HandleFunc("GET /health/ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "pong")
	})
	mux.HandleFunc("GET /health/status", s.seldonStatus)

	// TF Serving's ":predict" is part of the last path segment, which a
	// ServeMux wildcard cannot split, so the handler does.
	mux.HandleFunc("POST /v1/models/{target}", s.tensorflowVerb)
	mux.HandleFunc("GET /v1/models/{name}", s.tensorflowStatus)

	mux.HandleFunc("GET /v2", s.v2ServerMetadata)
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []byte(`{"live":true}`))
	})
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, r *http.Request) {
		if s.notReady.Load() {
			writeJSON(w, http.StatusServiceUnavailable, []byte(`{"ready":false}`))
			return
		}
		writeJSON(w, http.StatusOK, []byte(`{"ready":true}`))
	})
	for _, prefix := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		mux.HandleFunc("POST "+prefix+"/infer", s.v2Infer)
		mux.HandleFunc("POST "+prefix+"/route", s.v2Route)
		mux.HandleFunc("POST "+prefix+"/aggregate", s.v2Aggregate)
		mux.HandleFunc("GET "+prefix+"/ready", s.v2ModelReady)
		mux.HandleFunc("GET "+prefix, s.v2ModelMetadata)
	}
	return mux
}

// infer runs the fault pipeline documented on Server, then answer.
func (s *Server) infer(w http.ResponseWriter, r *http.Request, errBody errorFormat, answer func([]byte) ([]byte, error)) {
	s.inferNode(w, r, errBody, nil, answer)
}

// inferNode is infer with the per-request tags of a seldon node, which
// triggers reads from the body (nil: none).
func (s *Server) inferNode(w http.ResponseWriter, r *http.Request, errBody errorFormat, triggers func([]byte) nodeTriggers, answer func([]byte) ([]byte, error)) {
	leave := s.enter()
	defer leave()
	s.noteTrace(r.Header.Get("Seldon-Puid"), r.Header.Get("traceparent"))
	fail := func(status int, msg string) { writeJSON(w, status, errBody(status, msg)) }

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		fail(http.StatusBadRequest, fmt.Sprintf("read request body: %v", err))
		return
	}
	if !s.wait(r.Context()) {
		// The client is gone; the answer only matters to a proxy in between.
		fail(http.StatusServiceUnavailable, "request cancelled while delayed or hanging")
		return
	}
	if status, msg, failed := s.fault(); failed {
		fail(status, msg)
		return
	}
	if s.reject != nil {
		if status, rejected := s.reject(body); rejected {
			fail(validStatus(status), "rejected by test hook")
			return
		}
	}
	if triggers != nil {
		if status, msg, failed := s.nodeFault(r.Context(), triggers(body)); failed {
			fail(status, msg)
			return
		}
	}
	out, err := answer(body)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	s.served.Add(1)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) seldonStatus(w http.ResponseWriter, r *http.Request) {
	if s.notReady.Load() {
		writeJSON(w, http.StatusServiceUnavailable, seldonError(http.StatusServiceUnavailable, "model not ready"))
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

// tensorflowVerb serves POST /v1/models/{name}:{verb}: predict, and the
// route and aggregate verbs the legacy executor called TF graph nodes with.
func (s *Server) tensorflowVerb(w http.ResponseWriter, r *http.Request) {
	name, verb, _ := strings.Cut(r.PathValue("target"), ":")
	var answer func([]byte) ([]byte, error)
	switch verb {
	case "predict":
		answer = func(body []byte) ([]byte, error) { return TensorflowTransform(s.role, body) }
	case "route":
		answer = TensorflowRoute
	case "aggregate":
		answer = TensorflowAggregate
	default:
		writeJSON(w, http.StatusNotFound, jsonError(0, "Malformed request: POST "+r.URL.Path))
		return
	}
	if name != s.model {
		writeJSON(w, http.StatusNotFound, jsonError(0, fmt.Sprintf("Servable not found for request: Latest(%s)", name)))
		return
	}
	s.infer(w, r, jsonError, answer)
}

func (s *Server) tensorflowStatus(w http.ResponseWriter, r *http.Request) {
	if name := r.PathValue("name"); name != s.model {
		writeJSON(w, http.StatusNotFound, jsonError(0, fmt.Sprintf("Could not find any versions of model %s", name)))
		return
	}
	if s.notReady.Load() {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"model_version_status":[{"version":"1","state":"LOADING","status":{"error_code":"UNAVAILABLE","error_message":"model not ready"}}]}`))
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}`))
}

// v2Known answers 404 and returns false unless the path names the served
// model (and, if given, its only version).
func (s *Server) v2Known(w http.ResponseWriter, r *http.Request) bool {
	name, version := r.PathValue("name"), r.PathValue("version")
	if name == s.model && (version == "" || version == modelVersion) {
		return true
	}
	if version != "" {
		name += " version " + version
	}
	writeJSON(w, http.StatusNotFound, jsonError(0, fmt.Sprintf("model %s is not found", name)))
	return false
}

func (s *Server) v2Infer(w http.ResponseWriter, r *http.Request) {
	if !s.v2Known(w, r) {
		return
	}
	s.infer(w, r, jsonError, func(body []byte) ([]byte, error) { return V2Transform(s.role, s.model, body) })
}

func (s *Server) v2Route(w http.ResponseWriter, r *http.Request) {
	if !s.v2Known(w, r) {
		return
	}
	s.infer(w, r, jsonError, V2Route)
}

func (s *Server) v2Aggregate(w http.ResponseWriter, r *http.Request) {
	if !s.v2Known(w, r) {
		return
	}
	s.infer(w, r, jsonError, func(body []byte) ([]byte, error) { return V2Aggregate(s.model, body) })
}

func (s *Server) v2ModelReady(w http.ResponseWriter, r *http.Request) {
	if !s.v2Known(w, r) {
		return
	}
	status, ready := http.StatusOK, true
	if s.notReady.Load() {
		status, ready = http.StatusServiceUnavailable, false
	}
	writeJSON(w, status, mustJSON(map[string]any{"name": s.model, "ready": ready}))
}

func (s *Server) v2ModelMetadata(w http.ResponseWriter, r *http.Request) {
	if !s.v2Known(w, r) {
		return
	}
	// Any input name and numeric datatype is accepted; this advertises the
	// typical one.
	tensor := func(name string) map[string]any {
		return map[string]any{"name": name, "datatype": "FP32", "shape": []int{-1, -1}}
	}
	writeJSON(w, http.StatusOK, mustJSON(map[string]any{
		"name":     s.model,
		"versions": []string{modelVersion},
		"platform": "testmodel",
		"inputs":   []any{tensor("input")},
		"outputs":  []any{tensor(v2OutputName(s.role, "input"))},
	}))
}

func (s *Server) v2ServerMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"name":"testmodel","version":"1","extensions":[]}`))
}

// jsonError is the {"error": msg} body of TF Serving and v2 servers.
func jsonError(_ int, msg string) []byte {
	return mustJSON(map[string]string{"error": msg})
}

// seldonError is the status body of Seldon Core v1 microservices.
func seldonError(status int, msg string) []byte {
	reason := "MICROSERVICE_INTERNAL_ERROR"
	if status >= 400 && status < 500 {
		reason = "MICROSERVICE_BAD_DATA"
	}
	return mustJSON(map[string]any{"status": map[string]any{
		"code": status, "info": msg, "reason": reason, "status": "FAILURE",
	}})
}

// mustJSON encodes values built from plain maps and strings, which cannot
// fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("testmodel: encode %T: %v", v, err))
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
