package testmodel_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testmodel"
)

// seldonNode is one of the pure seldon node answers, as the server calls it.
type seldonNode func(name, image string, req []byte) ([]byte, error)

func TestSeldonTransformsMapEveryNumberKeepingTheRepresentation(t *testing.T) {
	tests := []struct {
		name string
		f    seldonNode
		req  string
		want string
	}{
		{
			name: "transform-input doubles an ndarray and keeps its names",
			f:    testmodel.SeldonTransformInput,
			req:  `{"data":{"names":["a","b"],"ndarray":[[1,2],[3,4.5]]}}`,
			want: `{"data":{"names":["a","b"],"ndarray":[[2,4],[6,9]]},"meta":{"requestPath":{"n":"img"}}}`,
		},
		{
			name: "transform-input doubles a tensor of any shape",
			f:    testmodel.SeldonTransformInput,
			req:  `{"data":{"tensor":{"shape":[2,1,2],"values":[1,-2,3,0.25]}}}`,
			want: `{"data":{"names":[],"tensor":{"shape":[2,1,2],"values":[2,-4,6,0.5]}},"meta":{"requestPath":{"n":"img"}}}`,
		},
		{
			name: "transform-output adds 1 to an ndarray",
			f:    testmodel.SeldonTransformOutput,
			req:  `{"data":{"names":["sum","product"],"ndarray":[[3,2]]}}`,
			want: `{"data":{"names":["sum","product"],"ndarray":[[4,3]]},"meta":{"requestPath":{"n":"img"}}}`,
		},
		{
			name: "transform-output adds 1 to a tensor",
			f:    testmodel.SeldonTransformOutput,
			req:  `{"data":{"tensor":{"shape":[1,2],"values":[-1,1.5]}}}`,
			want: `{"data":{"names":[],"tensor":{"shape":[1,2],"values":[0,2.5]}},"meta":{"requestPath":{"n":"img"}}}`,
		},
		{
			name: "an empty batch stays empty",
			f:    testmodel.SeldonTransformInput,
			req:  `{"data":{"ndarray":[]}}`,
			want: `{"data":{"names":[],"ndarray":[]},"meta":{"requestPath":{"n":"img"}}}`,
		},
		{
			name: "strData is echoed",
			f:    testmodel.SeldonTransformOutput,
			req:  `{"strData":"hello"}`,
			want: `{"strData":"hello","meta":{"requestPath":{"n":"img"}}}`,
		},
		{
			name: "jsonData is echoed",
			f:    testmodel.SeldonTransformInput,
			req:  `{"jsonData":{"a":[1,2]}}`,
			want: `{"jsonData":{"a":[1,2]},"meta":{"requestPath":{"n":"img"}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f("n", "img", []byte(tt.req))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSeldonMetaIsComposedAsThePythonWrapperDoes(t *testing.T) {
	const data = `"data":{"ndarray":[[1,2]]}`
	nodes := []struct {
		name string
		f    seldonNode
		// wrap turns one message into the node's request.
		wrap func(msg string) string
	}{
		{"predict", testmodel.SeldonPredictWithImage, func(m string) string { return m }},
		{"transform-input", testmodel.SeldonTransformInput, func(m string) string { return m }},
		{"transform-output", testmodel.SeldonTransformOutput, func(m string) string { return m }},
		{"aggregate of one", testmodel.SeldonAggregate, func(m string) string { return "[" + m + "]" }},
	}
	tests := []struct{ name, meta, wantMeta string }{
		{"no meta: own requestPath only", ``, `{"requestPath":{"n":"img"}}`},
		{"empty tags and metrics are omitted", `"meta":{"tags":{},"metrics":[]},`, `{"requestPath":{"n":"img"}}`},
		{"tags, metrics and puid carried on",
			`"meta":{"puid":"p-1","tags":{"fail-node":"other","b":true,"a":{"x":[1]}},"metrics":[{"key":"k","type":"GAUGE","value":2}],"routing":{"r":1}},`,
			`{"tags":{"a":{"x":[1]},"b":true,"fail-node":"other"},"metrics":[{"key":"k","type":"GAUGE","value":2}],"puid":"p-1","requestPath":{"n":"img"}}`},
		{"requestPath accumulates", `"meta":{"requestPath":{"t":"timg"}},`, `{"requestPath":{"n":"img","t":"timg"}}`},
		{"incoming requestPath wins for the node's own name", `"meta":{"requestPath":{"n":"upstream"}},`, `{"requestPath":{"n":"upstream"}}`},
	}
	for _, node := range nodes {
		for _, tt := range tests {
			t.Run(node.name+"/"+tt.name, func(t *testing.T) {
				got, err := node.f("n", "img", []byte(node.wrap("{"+tt.meta+data+"}")))
				if err != nil {
					t.Fatal(err)
				}
				var out struct{ Meta json.RawMessage }
				if err := json.Unmarshal(got, &out); err != nil {
					t.Fatal(err)
				}
				if string(out.Meta) != tt.wantMeta {
					t.Errorf("meta %s\nwant %s", out.Meta, tt.wantMeta)
				}
			})
		}
	}
}

func TestSeldonPredictReportsItsImage(t *testing.T) {
	got, err := testmodel.SeldonPredictWithImage("m", "repo/img:1", []byte(seldonReq))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"data":{"names":["sum","product"],"ndarray":[[3,2],[7,12]]},"meta":{"requestPath":{"m":"repo/img:1"}}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	def, err := testmodel.SeldonPredictWithImage("m", testmodel.DefaultImage, []byte(seldonReq))
	if err != nil {
		t.Fatal(err)
	}
	if old := mustAnswer(t, func() ([]byte, error) { return testmodel.SeldonPredict("m", []byte(seldonReq)) }); old != string(def) {
		t.Errorf("SeldonPredict %s\ndiffers from SeldonPredictWithImage with DefaultImage %s", old, def)
	}
}

func TestSeldonRouteOfRoutesOnTheFirstNumber(t *testing.T) {
	tests := []struct {
		name, data string
		want       int
	}{
		{"even goes to child 0", `"ndarray":[[4,1]]`, 0},
		{"odd goes to child 1", `"ndarray":[[3,0],[0,0]]`, 1},
		{"the integer part decides", `"ndarray":[[1.9]]`, 1},
		{"zero", `"ndarray":[[0]]`, 0},
		{"only the first row counts", `"ndarray":[[2],[1]]`, 0},
		{"tensor values[0]", `"tensor":{"shape":[2,2],"values":[5,2,2,2]}`, 1},
		{"-2 skips the children", `"ndarray":[[-2]]`, -2},
		{"other negatives go to every child", `"ndarray":[[-0.5]]`, -1},
		{"-3 goes to every child", `"ndarray":[[-3]]`, -1},
		{"just below a million routes normally", `"ndarray":[[999999]]`, 1},
		{"a million and above route to a child no graph has", `"ndarray":[[1e6]]`, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmodel.SeldonRouteOf([]byte(`{"data":{` + tt.data + `}}`))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("route = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSeldonRouteAnswersLikeThePythonWrapper(t *testing.T) {
	tests := []struct{ name, req, want string }{
		{"no meta", `{"data":{"names":["a","b"],"ndarray":[[1,2]]}}`,
			`{"data":{"names":["t:0"],"ndarray":[[1]]},"meta":{"requestPath":{"n":"img"}}}`},
		// The wrapper passes meta=None for route: only the puid survives.
		{"tags, metrics and requestPath are not carried on",
			`{"meta":{"puid":"p","tags":{"a":1},"metrics":[{"key":"k"}],"requestPath":{"t":"x"}},"data":{"ndarray":[[-2]]}}`,
			`{"data":{"names":["t:0"],"ndarray":[[-2]]},"meta":{"puid":"p","requestPath":{"n":"img"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmodel.SeldonRoute("n", "img", []byte(tt.req))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSeldonAggregateAveragesAndMergesMetas(t *testing.T) {
	tests := []struct{ name, req, want string }{
		{"bare array of ndarrays",
			`[{"data":{"names":["a","b"],"ndarray":[[1,2],[3,4]]}},{"data":{"names":["c","d"],"ndarray":[[2,4],[6,9]]}}]`,
			`{"data":{"names":["a","b"],"ndarray":[[1.5,3],[4.5,6.5]]},"meta":{"requestPath":{"n":"img"}}}`},
		{"SeldonMessageList form",
			`{"seldonMessages":[{"data":{"ndarray":[[1]]}},{"data":{"ndarray":[[2]]}},{"data":{"ndarray":[[6]]}}]}`,
			`{"data":{"names":[],"ndarray":[[3]]},"meta":{"requestPath":{"n":"img"}}}`},
		{"the first message's representation wins",
			`[{"data":{"tensor":{"shape":[1,2],"values":[1,2]}}},{"data":{"ndarray":[[3,4]]}}]`,
			`{"data":{"names":[],"tensor":{"shape":[1,2],"values":[2,3]}},"meta":{"requestPath":{"n":"img"}}}`},
		{"metas merged, later messages win, first puid",
			`[{"data":{"ndarray":[[1]]},"meta":{"puid":"p1","tags":{"x":"1","only1":true},"requestPath":{"a":"i1","m":"mi"},"metrics":[{"key":"k1"}]}},` +
				`{"data":{"ndarray":[[2]]},"meta":{"puid":"p2","tags":{"x":"2"},"requestPath":{"a":"i2","n":"up"},"metrics":[{"key":"k2"}]}}]`,
			`{"data":{"names":[],"ndarray":[[1.5]]},"meta":{"tags":{"only1":true,"x":"2"},"metrics":[{"key":"k1"},{"key":"k2"}],"puid":"p1","requestPath":{"a":"i2","m":"mi","n":"up"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmodel.SeldonAggregate("n", "img", []byte(tt.req))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSeldonGraphNodesRejectBadInput(t *testing.T) {
	route := func(_, _ string, req []byte) ([]byte, error) { _, err := testmodel.SeldonRouteOf(req); return nil, err }
	tests := []struct {
		name string
		f    seldonNode
		req  string
	}{
		{"transform: not JSON", testmodel.SeldonTransformInput, `nope`},
		{"transform: no payload", testmodel.SeldonTransformInput, `{"meta":{}}`},
		{"transform: ragged ndarray", testmodel.SeldonTransformInput, `{"data":{"ndarray":[[1,2],[3]]}}`},
		{"transform: tensor shape mismatch", testmodel.SeldonTransformOutput, `{"data":{"tensor":{"shape":[2,2],"values":[1]}}}`},
		{"transform: tftensor", testmodel.SeldonTransformOutput, `{"data":{"tftensor":{}}}`},
		{"transform: string in a row", testmodel.SeldonTransformInput, `{"data":{"ndarray":[["a"]]}}`},
		{"transform: doubling overflows", testmodel.SeldonTransformInput, `{"data":{"ndarray":[[1e308]]}}`},
		{"transform: tags not an object", testmodel.SeldonTransformInput, `{"meta":{"tags":[1]},"data":{"ndarray":[[1]]}}`},
		{"route: no data", testmodel.SeldonRoute, `{"strData":"x"}`},
		{"route: empty batch", testmodel.SeldonRoute, `{"data":{"ndarray":[]}}`},
		{"route: empty first row", route, `{"data":{"ndarray":[[]]}}`},
		{"route: empty tensor", testmodel.SeldonRoute, `{"data":{"tensor":{"shape":[0],"values":[]}}}`},
		{"aggregate: a single message", testmodel.SeldonAggregate, `{"data":{"ndarray":[[1]]}}`},
		{"aggregate: no messages", testmodel.SeldonAggregate, `[]`},
		{"aggregate: empty list", testmodel.SeldonAggregate, `{"seldonMessages":[]}`},
		{"aggregate: shapes differ", testmodel.SeldonAggregate, `[{"data":{"ndarray":[[1,2]]}},{"data":{"ndarray":[[1]]}}]`},
		{"aggregate: a message without data", testmodel.SeldonAggregate, `[{"data":{"ndarray":[[1]]}},{"strData":"x"}]`},
		{"aggregate: not JSON", testmodel.SeldonAggregate, `[`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.f("n", "img", []byte(tt.req)); err == nil {
				t.Errorf("answered %s, want an error", got)
			}
		})
	}
}

func TestTensorflowRolesApplyTheirFunction(t *testing.T) {
	tests := []struct {
		role      testmodel.Role
		req, want string
	}{
		{testmodel.RoleModel, `{"instances":[[1,2.5]]}`, `{"predictions":[[2,5]]}`},
		{"", `{"instances":[[1,2.5]]}`, `{"predictions":[[2,5]]}`},
		{testmodel.RoleTransformer, `{"instances":[[1,2.5]]}`, `{"predictions":[[2,3.5]]}`},
		{testmodel.RoleTransformer, `{"inputs":{"x":[-1]}}`, `{"outputs":{"x":[0]}}`},
		{testmodel.RoleTransformer, `{"instances":[9223372036854775806]}`, `{"predictions":[9223372036854775807]}`},
		{testmodel.RoleOutputTransformer, `{"instances":[[1,2.5]]}`, `{"predictions":[[10,25]]}`},
		// Beyond int64 the result falls back to float64, as doubling does.
		{testmodel.RoleOutputTransformer, `{"instances":[922337203685477581]}`, `{"predictions":[9223372036854776000]}`},
	}
	for _, tt := range tests {
		t.Run(tt.role.String()+" "+tt.req, func(t *testing.T) {
			got, err := testmodel.TensorflowTransform(tt.role, []byte(tt.req))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := testmodel.TensorflowTransform("combiner", []byte(tfReq)); err == nil {
		t.Error("an unknown role answered")
	}
}

func TestV2RolesApplyTheirFunctionAndName(t *testing.T) {
	const req = `{"id":"r","inputs":[{"name":"x","shape":[2],"datatype":"INT8","data":[1,-3]},{"name":"y","shape":[1],"datatype":"FP32","data":[0.5]}]}`
	tests := []struct {
		role testmodel.Role
		want string
	}{
		{testmodel.RoleModel, `{"model_name":"m","id":"r","outputs":[{"name":"x_doubled","shape":[2],"datatype":"INT8","data":[2,-6]},{"name":"y_doubled","shape":[1],"datatype":"FP32","data":[1]}]}`},
		{testmodel.RoleTransformer, `{"model_name":"m","id":"r","outputs":[{"name":"x","shape":[2],"datatype":"INT8","data":[2,-2]},{"name":"y","shape":[1],"datatype":"FP32","data":[1.5]}]}`},
		{testmodel.RoleOutputTransformer, `{"model_name":"m","id":"r","outputs":[{"name":"x","shape":[2],"datatype":"INT8","data":[10,-30]},{"name":"y","shape":[1],"datatype":"FP32","data":[5]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.role.String(), func(t *testing.T) {
			got, err := testmodel.V2Transform(tt.role, "m", []byte(req))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	overflow := `{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[13]}]}`
	if got, err := testmodel.V2Transform(testmodel.RoleOutputTransformer, "m", []byte(overflow)); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("13*10 as INT8 = %s, %v; want an overflow", got, err)
	}
}

func TestTensorflowAndV2RoutersAndCombiners(t *testing.T) {
	tests := []struct {
		name string
		f    func([]byte) ([]byte, error)
		req  string
		want string
	}{
		{"tf route on instances", testmodel.TensorflowRoute, `{"instances":[[3,8],[2,2]]}`, `[1]`},
		{"tf route on named inputs, in name order", testmodel.TensorflowRoute, `{"inputs":{"b":[1],"a":[[-2]]}}`, `[-2]`},
		{"tf route on a scalar", testmodel.TensorflowRoute, `{"inputs":2000000}`, `[7]`},
		{"tf aggregate", testmodel.TensorflowAggregate, `[{"predictions":[[1,2]]},{"predictions":[[2,4]]}]`, `{"predictions":[[1.5,3]]}`},
		{"tf aggregate of named outputs", testmodel.TensorflowAggregate, `[{"predictions":[{"a":1,"b":[2]}]},{"predictions":[{"b":[4],"a":3}]}]`, `{"predictions":[{"a":2,"b":[3]}]}`},
		{"v2 route", testmodel.V2Route, `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[[-1,5]]}]}`, `[-1]`},
		{"v2 aggregate", func(b []byte) ([]byte, error) { return testmodel.V2Aggregate("c", b) },
			`[{"id":"r1","model_name":"a","outputs":[{"name":"x","shape":[1,2],"datatype":"INT32","data":[1,2]},{"name":"z","shape":[],"datatype":"FP32","data":[1]}]},` +
				`{"id":"r2","outputs":[{"name":"y","shape":[1,2],"datatype":"FP32","data":[[2,5]]},{"name":"w","shape":[],"datatype":"INT8","data":[2]}]}]`,
			`{"model_name":"c","id":"r1","outputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1.5,3.5]},{"name":"z","shape":[],"datatype":"FP64","data":[1.5]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f([]byte(tt.req))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTensorflowAndV2RoutersAndCombinersRejectBadInput(t *testing.T) {
	v2Agg := func(b []byte) ([]byte, error) { return testmodel.V2Aggregate("c", b) }
	tests := []struct {
		name string
		f    func([]byte) ([]byte, error)
		req  string
	}{
		{"tf route: no number", testmodel.TensorflowRoute, `{"instances":[]}`},
		{"tf route: a string first", testmodel.TensorflowRoute, `{"instances":[["a"]]}`},
		{"tf aggregate: not an array", testmodel.TensorflowAggregate, `{"predictions":[1]}`},
		{"tf aggregate: nothing", testmodel.TensorflowAggregate, `[]`},
		{"tf aggregate: no predictions", testmodel.TensorflowAggregate, `[{"outputs":[1]}]`},
		{"tf aggregate: nesting differs", testmodel.TensorflowAggregate, `[{"predictions":[[1,2]]},{"predictions":[[1]]}]`},
		{"v2 route: no inputs", testmodel.V2Route, `{"inputs":[]}`},
		{"v2 route: no data", testmodel.V2Route, `{"inputs":[{"name":"x","data":[]}]}`},
		{"v2 aggregate: nothing", v2Agg, `[]`},
		{"v2 aggregate: output counts differ", v2Agg, `[{"outputs":[{"name":"x","shape":[1],"data":[1]}]},{"outputs":[]}]`},
		{"v2 aggregate: shapes differ", v2Agg, `[{"outputs":[{"name":"x","shape":[1],"data":[1]}]},{"outputs":[{"name":"x","shape":[1,1],"data":[1]}]}]`},
		{"v2 aggregate: data off its shape", v2Agg, `[{"outputs":[{"name":"x","shape":[2],"data":[1]}]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.f([]byte(tt.req)); err == nil {
				t.Errorf("answered %s, want an error", got)
			}
		})
	}
}

func TestParseRoleAcceptsOnlyTheThreeRoles(t *testing.T) {
	tests := []struct {
		in      string
		want    testmodel.Role
		wantErr bool
	}{
		{"model", testmodel.RoleModel, false},
		{"", testmodel.RoleModel, false},
		{"transformer", testmodel.RoleTransformer, false},
		{"output_transformer", testmodel.RoleOutputTransformer, false},
		{"router", "", true},
		{"Transformer", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := testmodel.ParseRole(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseRole(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted an unknown role")
		}
	}()
	testmodel.New(testmodel.Options{Role: "combiner"})
}

func TestGraphRoutesAnswerWhatThePureFunctionsDo(t *testing.T) {
	_, hs := newServer(t, testmodel.Options{ModelName: "demo", Image: "img", Role: testmodel.RoleTransformer})
	seldon := func(f seldonNode, req string) string {
		return mustAnswer(t, func() ([]byte, error) { return f("demo", "img", []byte(req)) })
	}
	tests := []struct{ name, path, body, want string }{
		{"seldon predict reports the image", "/predict", seldonReq, seldon(testmodel.SeldonPredictWithImage, seldonReq)},
		{"seldon transform-input", "/transform-input", seldonReq, seldon(testmodel.SeldonTransformInput, seldonReq)},
		{"seldon transform-output", "/transform-output", seldonReq, seldon(testmodel.SeldonTransformOutput, seldonReq)},
		{"seldon route", "/route", seldonReq, seldon(testmodel.SeldonRoute, seldonReq)},
		{"seldon aggregate", "/aggregate", seldonAggReq, seldon(testmodel.SeldonAggregate, seldonAggReq)},
		{"tensorflow predict applies the role", "/v1/models/demo:predict", tfReq,
			mustAnswer(t, func() ([]byte, error) { return testmodel.TensorflowTransform(testmodel.RoleTransformer, []byte(tfReq)) })},
		{"tensorflow route", "/v1/models/demo:route", tfReq, `[1]`},
		{"tensorflow aggregate", "/v1/models/demo:aggregate", tfAggReq, mustAnswer(t, func() ([]byte, error) { return testmodel.TensorflowAggregate([]byte(tfAggReq)) })},
		{"v2 infer applies the role", "/v2/models/demo/infer", v2Req,
			mustAnswer(t, func() ([]byte, error) { return testmodel.V2Transform(testmodel.RoleTransformer, "demo", []byte(v2Req)) })},
		{"v2 route", "/v2/models/demo/route", v2Req, `[1]`},
		{"v2 versioned aggregate", "/v2/models/demo/versions/1/aggregate", v2AggReq, mustAnswer(t, func() ([]byte, error) { return testmodel.V2Aggregate("demo", []byte(v2AggReq)) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, hs, "POST", tt.path, tt.body)
			if status != http.StatusOK || body != tt.want {
				t.Errorf("POST %s = %d %s\nwant 200 %s", tt.path, status, body, tt.want)
			}
		})
	}
	if status, body := do(t, hs, "POST", "/v1/models/other:route", tfReq); status != http.StatusNotFound {
		t.Errorf("route for another model = %d %s, want 404", status, body)
	}
	if _, body := do(t, hs, "GET", "/v2/models/demo", ""); !strings.Contains(body, `"outputs":[{"datatype":"FP32","name":"input",`) {
		t.Errorf("a transformer's metadata %s does not name its output after its input", body)
	}
}

// tagged puts meta.tags into a seldon request body.
func tagged(tags string) string {
	return `{"meta":{"tags":` + tags + `},"data":{"ndarray":[[1,2]]}}`
}

func TestFailNodeTagFailsOnlyTheNamedNode(t *testing.T) {
	routes := []struct{ name, path, body string }{
		{"predict", "/predict", tagged(`{"fail-node":"n"}`)},
		{"transform-input", "/transform-input", tagged(`{"fail-node":"n"}`)},
		{"transform-output", "/transform-output", tagged(`{"fail-node":"n"}`)},
		{"route", "/route", tagged(`{"fail-node":"n"}`)},
		{"aggregate, tag in a later message", "/aggregate", `[` + tagged(`{}`) + `,` + tagged(`{"fail-node":"n"}`) + `]`},
		{"aggregate list form", "/aggregate", `{"seldonMessages":[` + tagged(`{"fail-node":"n"}`) + `]}`},
	}
	for _, r := range routes {
		t.Run(r.name, func(t *testing.T) {
			s, hs := newServer(t, testmodel.Options{ModelName: "n"})
			status, body := do(t, hs, "POST", r.path, r.body)
			if status != http.StatusInternalServerError || !strings.Contains(body, "injected failure at n") {
				t.Fatalf("tagged for this node: %d %s, want 500 injected failure at n", status, body)
			}
			assertErrorBody(t, "seldon", http.StatusInternalServerError, body)
			other := strings.ReplaceAll(r.body, `"fail-node":"n"`, `"fail-node":"m"`)
			if status, body := do(t, hs, "POST", r.path, other); status != http.StatusOK {
				t.Errorf("tagged for another node: %d %s, want 200", status, body)
			}
			if s.Calls() != 2 || s.Served() != 1 {
				t.Errorf("Calls, Served = %d, %d; want 2, 1", s.Calls(), s.Served())
			}
		})
	}
}

func TestFailNodeTagMustBeTheNodesNameAsAString(t *testing.T) {
	_, hs := newServer(t, testmodel.Options{ModelName: "n"})
	for _, tags := range []string{`{"fail-node":["n"]}`, `{"fail-node":"N"}`, `{"Fail-Node":"n"}`, `{"fail-node":null}`} {
		if status, body := do(t, hs, "POST", "/predict", tagged(tags)); status != http.StatusOK {
			t.Errorf("tags %s: %d %s, want 200", tags, status, body)
		}
	}
}

func TestSlowNodeTagDelaysOnlyTheNamedNode(t *testing.T) {
	const slow = 300 * time.Millisecond
	_, hs := newServer(t, testmodel.Options{ModelName: "n", SlowDelay: slow})
	tests := []struct {
		name, path, body string
		wantSlow         bool
	}{
		{"named", "/transform-input", tagged(`{"slow-node":"n"}`), true},
		{"named in an aggregate", "/aggregate", `[` + tagged(`{"slow-node":"n"}`) + `]`, true},
		{"another node", "/transform-input", tagged(`{"slow-node":"m"}`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			status, body := do(t, hs, "POST", tt.path, tt.body)
			elapsed := time.Since(start)
			if status != http.StatusOK {
				t.Fatalf("status %d %s, want 200", status, body)
			}
			if tt.wantSlow && elapsed < slow {
				t.Errorf("answered in %v, before the slow delay %v", elapsed, slow)
			}
			if !tt.wantSlow && elapsed >= slow {
				t.Errorf("answered in %v: slowed although the tag names another node", elapsed)
			}
		})
	}
}
