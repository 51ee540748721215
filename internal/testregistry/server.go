// Package testregistry is a Schema Registry for tests: an HTTP server speaking the part of Confluent
// Schema Registry's REST API the sidecar uses — GET /schemas/ids/{id}, POST /subjects/{subject}/versions
// (register), POST /subjects/{subject} (look up), GET /subjects/{subject}/versions/latest — with
// Confluent's status and error codes, optional basic authentication and TLS. It keeps schemas as
// strings, as given: it parses none and checks no compatibility, but it assigns ids as Confluent's
// does (one id per distinct schema, whatever the subject) and refuses a reference to a subject version
// it does not hold, as Confluent's does.
package testregistry

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// Schema is a schema as the REST API carries it.
type Schema struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"` // empty: AVRO
	References []Reference `json:"references,omitempty"`
}

// Reference is a schema's reference to another, by subject and version.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

func (s Schema) same(o Schema) bool {
	norm := func(t string) string {
		if t == "" {
			return "AVRO"
		}
		return t
	}
	return s.Schema == o.Schema && norm(s.SchemaType) == norm(o.SchemaType) && slices.Equal(s.References, o.References)
}

// Options configure a Server.
type Options struct {
	User, Password string      // when User is set, every request needs these in HTTP basic authentication
	TLS            *tls.Config // when set, the server speaks HTTPS with it (its certificate, client authentication)
	// Refuse, when set, says which subjects refuse registration as incompatible (409).
	Refuse func(subject string) bool
}

// Server is a running test registry.
type Server struct {
	URL string

	o        Options
	srv      *httptest.Server
	mu       sync.Mutex
	schemas  []Schema         // by id - 1
	subjects map[string][]int // the ids of each subject's versions, version 1 first
	requests map[string]int   // by route pattern, e.g. "GET /schemas/ids/{id}"
}

// New starts a registry; it stops when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{o: o, subjects: map[string][]int{}, requests: map[string]int{}}
	mux := http.NewServeMux()
	for pattern, h := range map[string]func(http.ResponseWriter, *http.Request) (int, any){
		"GET /schemas/ids/{id}":                   s.byID,
		"POST /subjects/{subject}/versions":       s.register,
		"POST /subjects/{subject}":                s.lookup,
		"GET /subjects/{subject}/versions/latest": s.latest,
		"GET /subjects":                           s.listSubjects,
	} {
		mux.HandleFunc(pattern, s.handler(pattern, h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{404, "HTTP 404 Not Found: " + r.Method + " " + r.URL.Path})
	})
	s.srv = httptest.NewUnstartedServer(mux)
	// A refused TLS handshake is what some tests are about; it is not news in their output.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if o.TLS != nil {
		s.srv.TLS = o.TLS
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

type apiError struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

// handler authenticates, counts and answers a request; a handler returns the status and the body.
func (s *Server) handler(pattern string, h func(http.ResponseWriter, *http.Request) (int, any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		user, password := s.o.User, s.o.Password
		s.mu.Unlock()
		if user != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				writeJSON(w, http.StatusUnauthorized, apiError{401, "Unauthorized"})
				return
			}
		}
		s.mu.Lock()
		s.requests[pattern]++
		status, body := h(w, r)
		s.mu.Unlock()
		writeJSON(w, status, body)
	}
}

// SetCredentials replaces the credentials every request needs from now on, as a rotated API key does.
func (s *Server) SetCredentials(user, password string) {
	s.mu.Lock()
	s.o.User, s.o.Password = user, password
	s.mu.Unlock()
}

func (s *Server) listSubjects(_ http.ResponseWriter, _ *http.Request) (int, any) {
	return http.StatusOK, s.subjectNames()
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func notFound(code int, format string, args ...any) (int, any) {
	return http.StatusNotFound, apiError{code, fmt.Sprintf(format, args...)}
}

func (s *Server) byID(_ http.ResponseWriter, r *http.Request) (int, any) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 || id > len(s.schemas) {
		return notFound(40403, "Schema %s not found", r.PathValue("id"))
	}
	return http.StatusOK, s.schemas[id-1]
}

func (s *Server) register(_ http.ResponseWriter, r *http.Request) (int, any) {
	subject := r.PathValue("subject")
	var in Schema
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return http.StatusUnprocessableEntity, apiError{42201, "Invalid schema: " + err.Error()}
	}
	if status, body := s.check(in); status != 0 {
		return status, body
	}
	for _, id := range s.subjects[subject] {
		if s.schemas[id-1].same(in) {
			return http.StatusOK, map[string]int{"id": id}
		}
	}
	if s.o.Refuse != nil && s.o.Refuse(subject) {
		return http.StatusConflict, apiError{409, "Schema being registered is incompatible with an earlier schema for subject \"" + subject + "\""}
	}
	id := s.idOf(in)
	s.subjects[subject] = append(s.subjects[subject], id)
	return http.StatusOK, map[string]int{"id": id}
}

// check refuses a schema of a type the registry does not know, or one referring to a subject version
// it does not hold.
func (s *Server) check(in Schema) (int, any) {
	switch in.SchemaType {
	case "", "AVRO", "JSON", "PROTOBUF":
	default:
		return http.StatusUnprocessableEntity, apiError{42201, "Invalid schema type " + in.SchemaType}
	}
	for _, ref := range in.References {
		if v := s.subjects[ref.Subject]; ref.Version < 1 || ref.Version > len(v) {
			return http.StatusUnprocessableEntity, apiError{42201, fmt.Sprintf("Invalid schema: reference %s to subject %s version %d, which does not exist", ref.Name, ref.Subject, ref.Version)}
		}
	}
	return 0, nil
}

// idOf is the id of a schema, a new one if no subject holds it yet.
func (s *Server) idOf(in Schema) int {
	for i, sc := range s.schemas {
		if sc.same(in) {
			return i + 1
		}
	}
	s.schemas = append(s.schemas, in)
	return len(s.schemas)
}

func (s *Server) lookup(_ http.ResponseWriter, r *http.Request) (int, any) {
	subject := r.PathValue("subject")
	var in Schema
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return http.StatusUnprocessableEntity, apiError{42201, "Invalid schema: " + err.Error()}
	}
	ids, ok := s.subjects[subject]
	if !ok {
		return notFound(40401, "Subject '%s' not found.", subject)
	}
	for v, id := range ids {
		if s.schemas[id-1].same(in) {
			return http.StatusOK, s.metadata(subject, v+1, id)
		}
	}
	return notFound(40403, "Schema not found")
}

func (s *Server) latest(_ http.ResponseWriter, r *http.Request) (int, any) {
	subject := r.PathValue("subject")
	ids, ok := s.subjects[subject]
	if !ok {
		return notFound(40401, "Subject '%s' not found.", subject)
	}
	return http.StatusOK, s.metadata(subject, len(ids), ids[len(ids)-1])
}

func (s *Server) metadata(subject string, version, id int) map[string]any {
	sc := s.schemas[id-1]
	out := map[string]any{"subject": subject, "version": version, "id": id, "schema": sc.Schema}
	if sc.SchemaType != "" {
		out["schemaType"] = sc.SchemaType
	}
	if len(sc.References) > 0 {
		out["references"] = sc.References
	}
	return out
}

// Register registers a schema under a subject, as a producer's serializer would, and returns its id.
func (s *Server) Register(t testing.TB, subject string, sc Schema) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if status, body := s.check(sc); status != 0 {
		t.Fatalf("testregistry: %v", body)
	}
	for _, id := range s.subjects[subject] {
		if s.schemas[id-1].same(sc) {
			return id
		}
	}
	id := s.idOf(sc)
	s.subjects[subject] = append(s.subjects[subject], id)
	return id
}

// Latest is the latest schema of a subject and its id; ok is false for a subject it does not hold.
func (s *Server) Latest(subject string) (sc Schema, id int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.subjects[subject]
	if len(ids) == 0 {
		return Schema{}, 0, false
	}
	id = ids[len(ids)-1]
	return s.schemas[id-1], id, true
}

// Subjects are the subjects held, sorted.
func (s *Server) Subjects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subjectNames()
}

// subjectNames lists the subjects, sorted; s.mu is held.
func (s *Server) subjectNames() []string {
	out := make([]string, 0, len(s.subjects))
	for k := range s.subjects {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Requests is how many authenticated requests a route has answered, by its pattern
// ("GET /schemas/ids/{id}").
func (s *Server) Requests(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[pattern]
}
