package cifar10

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
)

// TestRequestsHaveTheLegacyExamplesShape: one image is 32×32×3 bytes scaled to [0, 1]; the REST request
// holds it as nested instances, the gRPC one as a [1, 32, 32, 3] float tensor of the same values; images
// differ by their number and not between runs.
func TestRequestsHaveTheLegacyExamplesShape(t *testing.T) {
	img := Image(3)
	if len(img) != Height*Width*Channels {
		t.Fatalf("%d values, want %d", len(img), Height*Width*Channels)
	}
	for i, v := range img {
		if k := v * 255; v < 0 || v > 1 || math.Abs(k-math.Round(k)) > 1e-9 {
			t.Fatalf("value %d is %v, not a byte scaled to [0, 1]", i, v)
		}
	}
	if slices.Equal(img, Image(4)) || !slices.Equal(img, Image(3)) {
		t.Error("images must differ by number and be the same for the same number")
	}

	var rest struct{ Instances [][][][]float64 }
	if err := json.Unmarshal(TensorflowJSON(img), &rest); err != nil {
		t.Fatal(err)
	}
	var flat []float64
	for _, row := range rest.Instances[0] {
		for _, px := range row {
			flat = append(flat, px...)
		}
	}
	if len(rest.Instances) != 1 || len(rest.Instances[0]) != Height || !slices.Equal(flat, img) {
		t.Errorf("the REST request does not hold the image as [1][32][32][3]")
	}

	pr := PredictRequest(img)
	in := pr.GetInputs()[InputName]
	var dims []int64
	for _, d := range in.GetTensorShape().GetDim() {
		dims = append(dims, d.GetSize())
	}
	if !slices.Equal(dims, []int64{1, Height, Width, Channels}) || len(in.GetFloatVal()) != len(img) || pr.GetModelSpec().GetName() != ModelName {
		t.Errorf("PredictRequest: model %q, input %s of shape %v with %d values", pr.GetModelSpec().GetName(), InputName, dims, len(in.GetFloatVal()))
	}
	for i, v := range in.GetFloatVal() {
		if v != float32(img[i]) {
			t.Fatalf("value %d is %v, want %v", i, v, float32(img[i]))
		}
	}
}
