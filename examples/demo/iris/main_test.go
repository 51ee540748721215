package main

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

// TestModelGivesScikitLearnsProbabilities: the Go model reproduces what scikit-learn's predict_proba
// gave for the rows fit.py kept, and each row's probabilities sum to 1.
func TestModelGivesScikitLearnsProbabilities(t *testing.T) {
	m, err := loadModel()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Checks) == 0 {
		t.Fatal("model.json has no checks: run fit.py")
	}
	for _, c := range m.Checks {
		p, err := m.Proba(c.X)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for k := range p {
			sum += p[k]
			if math.Abs(p[k]-c.Proba[k]) > 1e-9 {
				t.Errorf("row %v: %s %.12f, scikit-learn %.12f", c.X, m.Classes[k], p[k], c.Proba[k])
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("row %v: probabilities sum to %v", c.X, sum)
		}
	}
}

// TestPredictAnswersEachFormAndRefusesBadRows: ndarray rows are answered as ndarray and a tensor as a
// tensor, the classes as names, over REST and gRPC alike; a row of the wrong width is a 400 with the
// reason (InvalidArgument over gRPC).
func TestPredictAnswersEachFormAndRefusesBadRows(t *testing.T) {
	m, err := loadModel()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{m: m}
	h := s.routes()
	x := m.Checks[0].X
	want, _ := m.Proba(x)
	cases := []struct {
		name, body string
		status     int
		check      func(t *testing.T, out *seldonpb.SeldonMessage)
	}{
		{"ndarray", `{"data":{"ndarray":[[` + floats(x) + `],[` + floats(x) + `]]}}`, 200, func(t *testing.T, out *seldonpb.SeldonMessage) {
			rows := out.GetData().GetNdarray().GetValues()
			if len(rows) != 2 || rows[1].GetListValue().GetValues()[2].GetNumberValue() != want[2] {
				t.Errorf("ndarray answer %v, want two rows of %v", rows, want)
			}
		}},
		{"tensor", `{"data":{"tensor":{"shape":[1,4],"values":[` + floats(x) + `]}}}`, 200, func(t *testing.T, out *seldonpb.SeldonMessage) {
			tt := out.GetData().GetTensor()
			if len(tt.GetValues()) != 3 || tt.GetValues()[0] != want[0] || tt.GetShape()[1] != 3 {
				t.Errorf("tensor answer %v, want %v", tt, want)
			}
		}},
		{"three measurements", `{"data":{"ndarray":[[5.1,3.5,1.4]]}}`, 400, nil},
		{"not numbers", `{"data":{"ndarray":[["a","b","c","d"]]}}`, 400, nil},
		{"no data", `{"strData":"hello"}`, 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/predict", strings.NewReader(tc.body)))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			var in, out seldonpb.SeldonMessage
			if err := protojson.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if err := protojson.Unmarshal([]byte(tc.body), &in); err != nil {
				t.Fatal(err)
			}
			viaGRPC, err := s.Predict(context.Background(), &in)
			if tc.status != 200 {
				if out.GetStatus().GetInfo() == "" || err == nil {
					t.Errorf("no reason given: %s; gRPC error %v", rec.Body, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if names := out.GetData().GetNames(); strings.Join(names, ",") != "setosa,versicolor,virginica" {
				t.Errorf("names %v", names)
			}
			tc.check(t, &out)
			a, _ := protojson.Marshal(viaGRPC)
			b, _ := protojson.Marshal(&out)
			if !bytes.Equal(a, b) {
				t.Errorf("gRPC answer %s differs from REST's %s", a, b)
			}
		})
	}
}

func floats(x []float64) string {
	parts := make([]string, len(x))
	for i, v := range x {
		parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}
