package testmodel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testmodel"
)

func TestSeldonPredictAnswersSumAndProductPerRow(t *testing.T) {
	tests := []struct {
		name, req, want string
	}{
		{
			name: "ndarray",
			req:  `{"data":{"names":["a","b"],"ndarray":[[1,2],[3,4]]}}`,
			want: `{"data":{"names":["sum","product"],"ndarray":[[3,2],[7,12]]},"meta":{"requestPath":{"m":"testmodel"}}}`,
		},
		{
			name: "tensor",
			req:  `{"data":{"tensor":{"shape":[2,2],"values":[1,2,3,4]}}}`,
			want: `{"data":{"names":["sum","product"],"tensor":{"shape":[2,2],"values":[3,2,7,12]}},"meta":{"requestPath":{"m":"testmodel"}}}`,
		},
		{
			name: "tensor with three columns",
			req:  `{"data":{"tensor":{"shape":[1,3],"values":[2,3,4]}}}`,
			want: `{"data":{"names":["sum","product"],"tensor":{"shape":[1,2],"values":[9,24]}},"meta":{"requestPath":{"m":"testmodel"}}}`,
		},
		{
			name: "floats, negatives and exponents",
			req:  `{"data":{"ndarray":[[1.5,-2,1e1]]}}`,
			want: `{"data":{"names":["sum","product"],"ndarray":[[9.5,-30]]},"meta":{"requestPath":{"m":"testmodel"}}}`,
		},
		{
			name: "empty batch stays an empty array",
			req:  `{"data":{"ndarray":[]}}`,
			want: `{"data":{"names":["sum","product"],"ndarray":[]},"meta":{"requestPath":{"m":"testmodel"}}}`,
		},
		{
			name: "empty tensor",
			req:  `{"data":{"tensor":{"shape":[0,3],"values":[]}}}`,
			want: `{"data":{"names":["sum","product"],"tensor":{"shape":[0,2],"values":[]}},"meta":{"requestPath":{"m":"testmodel"}}}`,
		},
		{
			name: "jsonData echoed compactly",
			req:  `{"jsonData": {"b": [1, 2], "a": "x"}}`,
			want: `{"jsonData":{"b":[1,2],"a":"x"},"meta":{"requestPath":{"m":"testmodel"}}}`,
		},
		{
			name: "strData echoed, even empty",
			req:  `{"strData":""}`,
			want: `{"strData":"","meta":{"requestPath":{"m":"testmodel"}}}`,
		},
		{
			name: "binData echoed",
			req:  `{"binData":"aGVsbG8="}`,
			want: `{"binData":"aGVsbG8=","meta":{"requestPath":{"m":"testmodel"}}}`,
		},
		{
			name: "puid and tags carried on",
			req:  `{"meta":{"puid":"p-1","tags":{"x":1}},"strData":"s"}`,
			want: `{"strData":"s","meta":{"tags":{"x":1},"puid":"p-1","requestPath":{"m":"testmodel"}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmodel.SeldonPredict("m", []byte(tt.req))
			if err != nil {
				t.Fatalf("SeldonPredict: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSeldonPredictRejectsBadInput(t *testing.T) {
	tests := []struct{ name, req string }{
		{"not JSON", `hello`},
		{"empty body", ``},
		{"JSON array", `[1,2]`},
		{"JSON null", `null`},
		{"trailing data", `{"strData":"a"} {}`},
		{"no payload", `{"meta":{}}`},
		{"two payloads", `{"strData":"a","jsonData":{}}`},
		{"data without ndarray or tensor", `{"data":{"names":["a"]}}`},
		{"ndarray and tensor", `{"data":{"ndarray":[[1]],"tensor":{"shape":[1,1],"values":[1]}}}`},
		{"one-dimensional ndarray", `{"data":{"ndarray":[1,2]}}`},
		{"null in a row", `{"data":{"ndarray":[[1,null]]}}`},
		{"string in a row", `{"data":{"ndarray":[[1,"2"]]}}`},
		{"empty row", `{"data":{"ndarray":[[]]}}`},
		{"number out of float64 range", `{"data":{"ndarray":[[1e400]]}}`},
		{"product overflows", `{"data":{"ndarray":[[1e300,1e300]]}}`},
		{"tensor shape not 2-D", `{"data":{"tensor":{"shape":[4],"values":[1,2,3,4]}}}`},
		{"tensor shape mismatch", `{"data":{"tensor":{"shape":[2,3],"values":[1,2,3,4]}}}`},
		{"tensor negative shape", `{"data":{"tensor":{"shape":[-2,-2],"values":[1,2,3,4]}}}`},
		{"tensor zero-width rows", `{"data":{"tensor":{"shape":[3,0],"values":[]}}}`},
		{"tensor huge shape", `{"data":{"tensor":{"shape":[4611686018427387904,4],"values":[1]}}}`},
		{"tftensor", `{"data":{"tftensor":{"dtype":"DT_FLOAT"}}}`},
		{"binData not base64", `{"binData":"!!"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := testmodel.SeldonPredict("m", []byte(tt.req)); err == nil {
				t.Errorf("SeldonPredict(%s) = %s, want an error", tt.req, got)
			}
		})
	}
}

func TestTensorflowPredictDoublesEveryNumber(t *testing.T) {
	tests := []struct{ name, req, want string }{
		{"row format", `{"instances":[[1,2],[3,4]]}`, `{"predictions":[[2,4],[6,8]]}`},
		{"scalar rows", `{"instances":[1,2.5,-3]}`, `{"predictions":[2,5,-6]}`},
		{"nesting preserved", `{"instances":[[[1],[2]],[[3],[4]]]}`, `{"predictions":[[[2],[4]],[[6],[8]]]}`},
		{"named inputs per row", `{"signature_name":"serving_default","instances":[{"b":[1,2],"a":3},{"a":4,"b":[5,6]}]}`, `{"predictions":[{"a":6,"b":[2,4]},{"a":8,"b":[10,12]}]}`},
		{"empty batch", `{"instances":[]}`, `{"predictions":[]}`},
		{"columnar tensor", `{"inputs":[[1,2],[3,4]]}`, `{"outputs":[[2,4],[6,8]]}`},
		{"columnar named inputs of different shapes", `{"inputs":{"x":[1,2,3],"y":[[0.25]]}}`, `{"outputs":{"x":[2,4,6],"y":[[0.5]]}}`},
		{"columnar scalar", `{"inputs":7}`, `{"outputs":14}`},
		{"large integers stay exact", `{"instances":[4611686018427387903]}`, `{"predictions":[9223372036854775806]}`},
		{"integers beyond int64 fall back to float", `{"instances":[4611686018427387904]}`, `{"predictions":[9223372036854776000]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmodel.TensorflowPredict([]byte(tt.req))
			if err != nil {
				t.Fatalf("TensorflowPredict: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTensorflowPredictRejectsBadInput(t *testing.T) {
	tests := []struct{ name, req string }{
		{"not JSON", `{"instances":`},
		{"JSON string", `"instances"`},
		{"neither instances nor inputs", `{"signature_name":"x"}`},
		{"both instances and inputs", `{"instances":[1],"inputs":[1]}`},
		{"instances not a list", `{"instances":{"a":1}}`},
		{"ragged rows", `{"instances":[[1,2],[3]]}`},
		{"rows of different named inputs", `{"instances":[{"a":1},{"b":1}]}`},
		{"ragged columnar input", `{"inputs":{"x":[[1],[2,3]]}}`},
		{"string value", `{"instances":[["a"]]}`},
		{"boolean value", `{"instances":[true]}`},
		{"null value", `{"inputs":null}`},
		{"double overflows", `{"instances":[1.7e308]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := testmodel.TensorflowPredict([]byte(tt.req)); err == nil {
				t.Errorf("TensorflowPredict(%s) = %s, want an error", tt.req, got)
			}
		})
	}
}

func TestV2InferDoublesEachInput(t *testing.T) {
	tests := []struct{ name, req, want string }{
		{
			name: "FP32 flat",
			req:  `{"id":"r1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}`,
			want: `{"model_name":"m","id":"r1","outputs":[{"name":"x_doubled","shape":[2,2],"datatype":"FP32","data":[2,4,6,8]}]}`,
		},
		{
			name: "nested data answers flat, no id",
			req:  `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[[0.5,1],[1.5,2]]}]}`,
			want: `{"model_name":"m","outputs":[{"name":"x_doubled","shape":[2,2],"datatype":"FP64","data":[1,2,3,4]}]}`,
		},
		{
			name: "several inputs keep their order",
			req:  `{"id":"r2","inputs":[{"name":"b","shape":[1],"datatype":"INT32","data":[-5]},{"name":"a","shape":[3],"datatype":"UINT8","data":[0,1,127]}]}`,
			want: `{"model_name":"m","id":"r2","outputs":[{"name":"b_doubled","shape":[1],"datatype":"INT32","data":[-10]},{"name":"a_doubled","shape":[3],"datatype":"UINT8","data":[0,2,254]}]}`,
		},
		{
			name: "INT64 exact and integral floats accepted",
			req:  `{"inputs":[{"name":"x","shape":[3],"datatype":"INT64","data":[4611686018427387903,3.0,1e2]}]}`,
			want: `{"model_name":"m","outputs":[{"name":"x_doubled","shape":[3],"datatype":"INT64","data":[9223372036854775806,6,200]}]}`,
		},
		{
			name: "UINT64 beyond int64",
			req:  `{"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[9223372036854775807]}]}`,
			want: `{"model_name":"m","outputs":[{"name":"x_doubled","shape":[1],"datatype":"UINT64","data":[18446744073709551614]}]}`,
		},
		{
			name: "scalar shape",
			req:  `{"inputs":[{"name":"x","shape":[],"datatype":"FP16","data":3}]}`,
			want: `{"model_name":"m","outputs":[{"name":"x_doubled","shape":[],"datatype":"FP16","data":[6]}]}`,
		},
		{
			name: "empty tensor",
			req:  `{"inputs":[{"name":"x","shape":[0,4],"datatype":"FP32","data":[]}]}`,
			want: `{"model_name":"m","outputs":[{"name":"x_doubled","shape":[0,4],"datatype":"FP32","data":[]}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmodel.V2Infer("m", []byte(tt.req))
			if err != nil {
				t.Fatalf("V2Infer: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestV2InferRejectsBadInput(t *testing.T) {
	input := func(fields string) string { return `{"inputs":[{` + fields + `}]}` }
	tests := []struct{ name, req string }{
		{"not JSON", `inputs`},
		{"JSON array", `[]`},
		{"no inputs", `{"id":"x"}`},
		{"empty inputs", `{"inputs":[]}`},
		{"id not a string", `{"id":1,"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`},
		{"missing name", input(`"shape":[1],"datatype":"FP32","data":[1]`)},
		{"missing shape", input(`"name":"x","datatype":"FP32","data":[1]`)},
		{"missing datatype", input(`"name":"x","shape":[1],"data":[1]`)},
		{"missing data", input(`"name":"x","shape":[1],"datatype":"FP32"`)},
		{"shape mismatch", input(`"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3]`)},
		{"negative shape", input(`"name":"x","shape":[-1],"datatype":"FP32","data":[1]`)},
		{"zero shape with data", input(`"name":"x","shape":[0,2],"datatype":"FP32","data":[1,2]`)},
		{"shape not integers", input(`"name":"x","shape":[1.5],"datatype":"FP32","data":[1]`)},
		{"unknown datatype", input(`"name":"x","shape":[1],"datatype":"FP8","data":[1]`)},
		{"BYTES", input(`"name":"x","shape":[1],"datatype":"BYTES","data":["a"]`)},
		{"string element", input(`"name":"x","shape":[1],"datatype":"FP32","data":["1"]`)},
		{"null element", input(`"name":"x","shape":[1],"datatype":"FP32","data":[null]`)},
		{"fraction in an integer type", input(`"name":"x","shape":[1],"datatype":"INT32","data":[1.5]`)},
		{"negative in an unsigned type", input(`"name":"x","shape":[1],"datatype":"UINT8","data":[-1]`)},
		{"value out of range", input(`"name":"x","shape":[1],"datatype":"INT8","data":[200]`)},
		{"double overflows the integer type", input(`"name":"x","shape":[1],"datatype":"INT8","data":[100]`)},
		{"double overflows FP32", input(`"name":"x","shape":[1],"datatype":"FP32","data":[3e38]`)},
		{"duplicate input names", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := testmodel.V2Infer("m", []byte(tt.req)); err == nil {
				t.Errorf("V2Infer(%s) = %s, want an error", tt.req, got)
			}
		})
	}
}

const (
	seldonReq    = `{"data":{"ndarray":[[1,2],[3,4]]}}`
	seldonAggReq = `[{"data":{"ndarray":[[1,2],[3,4]]}},{"data":{"ndarray":[[3,4],[5,6]]}}]`
	tfReq        = `{"instances":[[1,2],[3,4]]}`
	tfAggReq     = `[{"predictions":[[1,2],[3,4]]},{"predictions":[[3,4],[5,6]]}]`
	v2Req        = `{"id":"r1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}`
	v2AggReq     = `[{"id":"r1","outputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}]},{"outputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[3,4]}]}]`
)

// inferRoutes are the infer calls of every protocol and graph node against a
// server whose model is "demo"; every fault test runs over all of them.
var inferRoutes = []struct{ protocol, path, body string }{
	{"seldon", "/predict", seldonReq},
	{"seldon executor", "/api/v1.0/predictions", seldonReq},
	{"seldon transform-input", "/transform-input", seldonReq},
	{"seldon transform-output", "/transform-output", seldonReq},
	{"seldon route", "/route", seldonReq},
	{"seldon aggregate", "/aggregate", seldonAggReq},
	{"tensorflow", "/v1/models/demo:predict", tfReq},
	{"tensorflow route", "/v1/models/demo:route", tfReq},
	{"tensorflow aggregate", "/v1/models/demo:aggregate", tfAggReq},
	{"v2", "/v2/models/demo/infer", v2Req},
	{"v2 versioned", "/v2/models/demo/versions/1/infer", v2Req},
	{"v2 route", "/v2/models/demo/route", v2Req},
	{"v2 aggregate", "/v2/models/demo/aggregate", v2AggReq},
}

func newServer(t *testing.T, opts testmodel.Options) (*testmodel.Server, *httptest.Server) {
	t.Helper()
	if opts.ModelName == "" {
		opts.ModelName = "demo"
	}
	s := testmodel.New(opts)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs
}

// do sends one request and returns the status and body. It reports
// transport errors with Errorf and returns status 0, so that goroutines
// other than the test's may call it.
func do(t *testing.T, hs *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
	if err != nil {
		t.Errorf("build request: %v", err)
		return 0, ""
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("read %s %s: %v", method, path, err)
		return 0, ""
	}
	return resp.StatusCode, string(b)
}

func mustAnswer(t *testing.T, f func() ([]byte, error)) string {
	t.Helper()
	b, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutesServeEveryProtocol(t *testing.T) {
	_, hs := newServer(t, testmodel.Options{})
	seldonWant := mustAnswer(t, func() ([]byte, error) { return testmodel.SeldonPredict("demo", []byte(seldonReq)) })
	tfWant := mustAnswer(t, func() ([]byte, error) { return testmodel.TensorflowPredict([]byte(tfReq)) })
	v2Want := mustAnswer(t, func() ([]byte, error) { return testmodel.V2Infer("demo", []byte(v2Req)) })
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 string
	}{
		{"seldon predict", "POST", "/predict", seldonReq, 200, seldonWant},
		{"seldon executor path", "POST", "/api/v1.0/predictions", seldonReq, 200, seldonWant},
		{"seldon ping", "GET", "/health/ping", "", 200, "pong"},
		{"seldon status", "GET", "/health/status", "", 200, `{"status":"ok"}`},
		{"tensorflow predict", "POST", "/v1/models/demo:predict", tfReq, 200, tfWant},
		{"tensorflow status", "GET", "/v1/models/demo", "", 200, `{"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}`},
		{"v2 infer", "POST", "/v2/models/demo/infer", v2Req, 200, v2Want},
		{"v2 versioned infer", "POST", "/v2/models/demo/versions/1/infer", v2Req, 200, v2Want},
		{"v2 live", "GET", "/v2/health/live", "", 200, `{"live":true}`},
		{"v2 ready", "GET", "/v2/health/ready", "", 200, `{"ready":true}`},
		{"v2 model ready", "GET", "/v2/models/demo/ready", "", 200, `{"name":"demo","ready":true}`},
		{"v2 model metadata", "GET", "/v2/models/demo", "", 200, `{"inputs":[{"datatype":"FP32","name":"input","shape":[-1,-1]}],"name":"demo","outputs":[{"datatype":"FP32","name":"input_doubled","shape":[-1,-1]}],"platform":"testmodel","versions":["1"]}`},
		{"v2 server metadata", "GET", "/v2", "", 200, `{"name":"testmodel","version":"1","extensions":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, hs, tt.method, tt.path, tt.body)
			if status != tt.wantStatus || body != tt.wantBody {
				t.Errorf("%s %s = %d %s\nwant %d %s", tt.method, tt.path, status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestUnknownModelAnswers404(t *testing.T) {
	s, hs := newServer(t, testmodel.Options{})
	tests := []struct{ name, method, path, body, wantBody string }{
		{"tensorflow predict", "POST", "/v1/models/other:predict", tfReq, `{"error":"Servable not found for request: Latest(other)"}`},
		{"tensorflow unknown verb", "POST", "/v1/models/demo:classify", tfReq, `{"error":"Malformed request: POST /v1/models/demo:classify"}`},
		{"tensorflow status", "GET", "/v1/models/other", "", `{"error":"Could not find any versions of model other"}`},
		{"v2 infer", "POST", "/v2/models/other/infer", v2Req, `{"error":"model other is not found"}`},
		{"v2 infer unknown version", "POST", "/v2/models/demo/versions/2/infer", v2Req, `{"error":"model demo version 2 is not found"}`},
		{"v2 model ready", "GET", "/v2/models/other/ready", "", `{"error":"model other is not found"}`},
		{"v2 model metadata", "GET", "/v2/models/other", "", `{"error":"model other is not found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, hs, tt.method, tt.path, tt.body)
			if status != http.StatusNotFound || body != tt.wantBody {
				t.Errorf("%s %s = %d %s, want 404 %s", tt.method, tt.path, status, body, tt.wantBody)
			}
		})
	}
	if got := s.Calls(); got != 0 {
		t.Errorf("Calls() = %d after 404s only, want 0: unknown models are not infer calls", got)
	}
}

func TestBadRequestAnswers400WithProtocolErrorBody(t *testing.T) {
	s, hs := newServer(t, testmodel.Options{})
	bad := []string{`not json`, `[1,2]`, `{}`}
	for _, r := range inferRoutes {
		for _, body := range bad {
			t.Run(r.protocol+" "+body, func(t *testing.T) {
				status, got := do(t, hs, "POST", r.path, body)
				if status != http.StatusBadRequest {
					t.Fatalf("status = %d %s, want 400", status, got)
				}
				assertErrorBody(t, r.protocol, http.StatusBadRequest, got)
			})
		}
	}
	if calls, served := s.Calls(), s.Served(); calls != int64(len(inferRoutes)*len(bad)) || served != 0 {
		t.Errorf("Calls, Served = %d, %d; want %d, 0", calls, served, len(inferRoutes)*len(bad))
	}
}

// assertErrorBody checks the error shape each protocol's clients parse.
func assertErrorBody(t *testing.T, protocol string, status int, body string) {
	t.Helper()
	if strings.HasPrefix(protocol, "seldon") {
		var e struct {
			Status struct {
				Code   int    `json:"code"`
				Info   string `json:"info"`
				Status string `json:"status"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status.Code != status || e.Status.Info == "" || e.Status.Status != "FAILURE" {
			t.Errorf("body %s is not a seldon status error with code %d (%v)", body, status, err)
		}
		return
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf(`body %s is not {"error": ...} (%v)`, body, err)
	}
}

func TestUnavailableWindowAnswers503ThenRecovers(t *testing.T) {
	const window = 500 * time.Millisecond
	for _, r := range inferRoutes {
		t.Run(r.protocol, func(t *testing.T) {
			t.Parallel()
			s, hs := newServer(t, testmodel.Options{})
			start := time.Now()
			s.SetUnavailable(window)
			status, body := do(t, hs, "POST", r.path, r.body)
			if time.Since(start) >= window {
				t.Skipf("the first call took longer than the %v window; machine too slow to tell", window)
			}
			if status != http.StatusServiceUnavailable {
				t.Fatalf("inside the window: status = %d %s, want 503", status, body)
			}
			assertErrorBody(t, r.protocol, http.StatusServiceUnavailable, body)
			time.Sleep(time.Until(start.Add(window)))
			if status, body := do(t, hs, "POST", r.path, r.body); status != http.StatusOK {
				t.Fatalf("after the window: status = %d %s, want 200", status, body)
			}
			if s.Calls() != 2 || s.Served() != 1 {
				t.Errorf("Calls, Served = %d, %d; want 2, 1", s.Calls(), s.Served())
			}
		})
	}
}

func TestSetUnavailableZeroEndsTheWindow(t *testing.T) {
	s, hs := newServer(t, testmodel.Options{})
	s.SetUnavailable(time.Hour)
	s.SetUnavailable(0)
	if status, body := do(t, hs, "POST", "/predict", seldonReq); status != http.StatusOK {
		t.Errorf("status = %d %s, want 200", status, body)
	}
}

func TestFailNextFailsExactlyNCalls(t *testing.T) {
	tests := []struct {
		name       string
		n, status  int
		wantStatus []int
	}{
		{"two 500s", 2, 500, []int{500, 500, 200, 200}},
		{"one 429", 1, 429, []int{429, 200}},
		{"zero cancels", 0, 500, []int{200}},
		{"invalid status becomes 500", 1, 42, []int{500, 200}},
	}
	for _, r := range inferRoutes {
		for _, tt := range tests {
			t.Run(r.protocol+" "+tt.name, func(t *testing.T) {
				s, hs := newServer(t, testmodel.Options{})
				s.FailNext(tt.n, tt.status)
				for i, want := range tt.wantStatus {
					if got, body := do(t, hs, "POST", r.path, r.body); got != want {
						t.Errorf("call %d: status = %d %s, want %d", i, got, body, want)
					}
				}
				if s.Calls() != int64(len(tt.wantStatus)) || s.Served() != int64(len(tt.wantStatus)-min(tt.n, len(tt.wantStatus))) {
					t.Errorf("Calls, Served = %d, %d", s.Calls(), s.Served())
				}
			})
		}
	}
}

func TestFailNextReplacesTheRemainingCount(t *testing.T) {
	s, hs := newServer(t, testmodel.Options{})
	s.FailNext(5, 500)
	s.FailNext(1, 502)
	for i, want := range []int{502, 200} {
		if got, _ := do(t, hs, "POST", "/predict", seldonReq); got != want {
			t.Errorf("call %d: status = %d, want %d", i, got, want)
		}
	}
}

func TestNotReadyFailsReadinessAndInferButNotLiveness(t *testing.T) {
	s, hs := newServer(t, testmodel.Options{})
	tests := []struct {
		name, method, path, body string
		wantNotReady             int
	}{
		{"seldon status", "GET", "/health/status", "", 503},
		{"seldon ping", "GET", "/health/ping", "", 200},
		{"tensorflow status", "GET", "/v1/models/demo", "", 503},
		{"v2 ready", "GET", "/v2/health/ready", "", 503},
		{"v2 model ready", "GET", "/v2/models/demo/ready", "", 503},
		{"v2 live", "GET", "/v2/health/live", "", 200},
		{"v2 metadata", "GET", "/v2/models/demo", "", 200},
	}
	for _, r := range inferRoutes {
		tests = append(tests, struct {
			name, method, path, body string
			wantNotReady             int
		}{r.protocol + " infer", "POST", r.path, r.body, 503})
	}
	s.SetNotReady(true)
	for _, tt := range tests {
		t.Run("not ready/"+tt.name, func(t *testing.T) {
			if got, body := do(t, hs, tt.method, tt.path, tt.body); got != tt.wantNotReady {
				t.Errorf("status = %d %s, want %d", got, body, tt.wantNotReady)
			}
		})
	}
	s.SetNotReady(false)
	for _, tt := range tests {
		t.Run("ready again/"+tt.name, func(t *testing.T) {
			if got, body := do(t, hs, tt.method, tt.path, tt.body); got != http.StatusOK {
				t.Errorf("status = %d %s, want 200", got, body)
			}
		})
	}
}

func TestDelayedCallsRunConcurrently(t *testing.T) {
	const parallel, delay = 8, 500 * time.Millisecond
	for _, r := range inferRoutes {
		t.Run(r.protocol, func(t *testing.T) {
			t.Parallel()
			s, hs := newServer(t, testmodel.Options{Delay: delay})
			start := time.Now()
			var wg sync.WaitGroup
			statuses := make([]int, parallel)
			for i := range parallel {
				wg.Go(func() { statuses[i], _ = do(t, hs, "POST", r.path, r.body) })
			}
			wg.Wait()
			elapsed := time.Since(start)
			for i, st := range statuses {
				if st != http.StatusOK {
					t.Errorf("call %d: status %d", i, st)
				}
			}
			if elapsed < delay {
				t.Errorf("calls took %v, less than the delay %v", elapsed, delay)
			}
			if got := s.MaxConcurrent(); got != parallel {
				t.Errorf("MaxConcurrent() = %d, want %d", got, parallel)
			}
			if s.Calls() != parallel || s.Served() != parallel {
				t.Errorf("Calls, Served = %d, %d; want %d", s.Calls(), s.Served(), parallel)
			}
		})
	}
}

func TestCallCostServesOneCallAtATime(t *testing.T) {
	const parallel, cost = 4, 50 * time.Millisecond
	for _, r := range inferRoutes {
		t.Run(r.protocol, func(t *testing.T) {
			t.Parallel()
			s, hs := newServer(t, testmodel.Options{CallCost: cost})
			start := time.Now()
			var wg sync.WaitGroup
			statuses := make([]int, parallel)
			for i := range parallel {
				wg.Go(func() { statuses[i], _ = do(t, hs, "POST", r.path, r.body) })
			}
			wg.Wait()
			elapsed := time.Since(start)
			for i, st := range statuses {
				if st != http.StatusOK {
					t.Errorf("call %d: status %d", i, st)
				}
			}
			// The calls arrive together and queue for the one slot: the last ends no sooner than
			// parallel × cost after the first began.
			if elapsed < parallel*cost {
				t.Errorf("%d calls took %v, less than %v: they did not queue for the slot", parallel, elapsed, parallel*cost)
			}
			if s.Served() != parallel {
				t.Errorf("Served = %d, want %d", s.Served(), parallel)
			}
		})
	}
}

func TestSequentialCallsHaveMaxConcurrentOne(t *testing.T) {
	s, hs := newServer(t, testmodel.Options{})
	s.SetDelay(10 * time.Millisecond)
	for range 3 {
		do(t, hs, "POST", "/predict", seldonReq)
	}
	if got := s.MaxConcurrent(); got != 1 {
		t.Errorf("MaxConcurrent() = %d, want 1", got)
	}
	s.ResetCounters()
	if s.Calls() != 0 || s.Served() != 0 || s.MaxConcurrent() != 0 {
		t.Errorf("after ResetCounters: %d, %d, %d; want zeros", s.Calls(), s.Served(), s.MaxConcurrent())
	}
}

func TestAWaitGivesUpWhenTheClientDoes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testmodel.Options
		hang bool
		body string
	}{
		{"the delay", testmodel.Options{Delay: time.Hour}, false, seldonReq},
		{"the call cost", testmodel.Options{CallCost: time.Hour}, false, seldonReq},
		{"a slow-node tag", testmodel.Options{ModelName: "n", SlowDelay: time.Hour}, false, tagged(`{"slow-node":"n"}`)},
		{"a hang", testmodel.Options{}, true, seldonReq},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, hs := newServer(t, tc.opts)
			s.SetHanging(tc.hang)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "POST", hs.URL+"/predict", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := hs.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want a deadline error", err)
			}
			// httptest.Server.Close waits for handlers: it would hang for the hour
			// if the wait ignored the request context.
			done := make(chan struct{})
			go func() { hs.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the handler is still waiting after its client gave up")
			}
			if s.Calls() != 1 || s.Served() != 0 {
				t.Errorf("Calls, Served = %d, %d; want 1, 0", s.Calls(), s.Served())
			}
		})
	}
}

func TestRejectHookAnswersItsStatus(t *testing.T) {
	var seen sync.Map
	s, hs := newServer(t, testmodel.Options{Reject: func(body []byte) (int, bool) {
		seen.Store(string(body), true)
		if bytes.Contains(body, []byte(`"reject"`)) {
			return http.StatusBadRequest, true
		}
		return 0, false
	}})
	tests := []struct{ protocol, path, body string }{
		{"seldon", "/predict", `{"strData":"reject"}`},
		{"tensorflow", "/v1/models/demo:predict", `{"instances":[1],"signature_name":"reject"}`},
		{"v2", "/v2/models/demo/infer", `{"id":"reject","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.protocol, func(t *testing.T) {
			status, body := do(t, hs, "POST", tt.path, tt.body)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d %s, want 400", status, body)
			}
			assertErrorBody(t, tt.protocol, http.StatusBadRequest, body)
			if _, ok := seen.Load(tt.body); !ok {
				t.Errorf("hook did not see the exact body")
			}
			accepted := strings.Replace(tt.body, `"reject"`, `"fine"`, 1)
			if status, body := do(t, hs, "POST", tt.path, accepted); status != http.StatusOK {
				t.Errorf("accepted body: status = %d %s, want 200", status, body)
			}
		})
	}
	if s.Calls() != 6 || s.Served() != 3 {
		t.Errorf("Calls, Served = %d, %d; want 6, 3", s.Calls(), s.Served())
	}
}

func TestServeAndShutdown(t *testing.T) {
	s := testmodel.New(testmodel.Options{})
	if s.ModelName() != testmodel.DefaultModelName {
		t.Errorf("ModelName() = %q, want the default %q", s.ModelName(), testmodel.DefaultModelName)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/v2/models/model/ready")
	if err != nil {
		t.Fatalf("GET ready: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("ready status = %d, want 200", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
}

func TestFaultSettersAreSafeUnderConcurrentCalls(t *testing.T) {
	s, hs := newServer(t, testmodel.Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.SetDelay(time.Duration(i%3) * time.Millisecond)
			s.FailNext(i%2, 500)
			s.SetUnavailable(time.Duration(i%2) * time.Millisecond)
			s.SetNotReady(i%5 == 0)
			s.ResetCounters()
		}
	})
	for i := range 4 {
		wg.Go(func() {
			for range 20 {
				r := inferRoutes[i%len(inferRoutes)]
				do(t, hs, "POST", r.path, r.body)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
}

func TestHangingHoldsInferCallsUntilReleasedWhileReadinessAnswers(t *testing.T) {
	s, hs := newServer(t, testmodel.Options{})
	s.SetHanging(true)
	s.SetHanging(true) // a second hang is the same hang: one release ends it
	answered := make(chan int, 1)
	go func() {
		st, _ := do(t, hs, "POST", "/predict", seldonReq)
		answered <- st
	}()
	for s.Calls() == 0 {
		time.Sleep(time.Millisecond)
	}
	for _, path := range []string{"/health/status", "/v2/health/ready", "/v2/models/demo/ready"} {
		if st, body := do(t, hs, "GET", path, ""); st != http.StatusOK {
			t.Errorf("GET %s while hanging = %d %s, want 200", path, st, body)
		}
	}
	select {
	case st := <-answered:
		t.Fatalf("a call was answered %d while the model hangs", st)
	default:
	}

	s.SetHanging(false)
	if st := <-answered; st != http.StatusOK {
		t.Errorf("the held call was answered %d after the release, want 200", st)
	}
	if st, body := do(t, hs, "POST", "/predict", seldonReq); st != http.StatusOK {
		t.Errorf("a call after the release = %d %s, want 200", st, body)
	}
	s.SetHanging(false) // releasing a server that does not hang is harmless
	if s.Served() != 2 {
		t.Errorf("Served = %d, want 2", s.Served())
	}
}
