// Package cifar10 makes requests of the size and shape the legacy CIFAR10 example sends to a TF Serving
// resnet32 behind the sidecar: one 32×32 RGB image, each value a byte scaled to [0, 1] (k/255) as the
// example's normalised test images are. The images are drawn here (a sky, a ground, a disc and some
// texture), not taken from the CIFAR10 data set: the same bytes every time, with the kind of repetition
// a photograph has, which is what compression figures depend on.
package cifar10

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
)

// The image's dimensions, as the model takes them: height, width, channels.
const (
	Height   = 32
	Width    = 32
	Channels = 3
)

// ModelName and InputName are the resnet32 model's, as the legacy example calls it.
const (
	ModelName = "resnet32"
	InputName = "input_1"
)

// Image is picture n (any n; each differs), Height × Width × Channels values k/255, row-major.
func Image(n int) []float64 {
	out := make([]float64, 0, Height*Width*Channels)
	cx, cy := 10+float64(n%13), 12+float64(n%7)
	for y := range Height {
		for x := range Width {
			var r, g, b float64
			switch {
			case math.Hypot(float64(x)-cx, float64(y)-cy) < 6+float64(n%4): // a disc
				r, g, b = 200, 60+float64(n%50), 40
			case y < 18: // sky, lighter towards the horizon
				r, g, b = 90+float64(y)*4, 140+float64(y)*3, 230
			default: // ground, with a texture
				t := float64((x*7+y*13+n)%9) * 6
				r, g, b = 70+t, 110+t, 50+t/2
			}
			for c, v := range [3]float64{r, g, b} {
				// A photograph's sensor noise: a few levels either way, pixel by pixel.
				noise := float64(uint32((x+1)*73856093^(y+1)*19349663^(c+1)*83492791^(n+1)*2654435761)%9) - 4
				out = append(out, math.Round(min(max(v+noise, 0), 255))/255)
			}
		}
	}
	return out
}

// nested is the image as the nested [height][width][channels] lists TF Serving's REST API takes.
func nested(img []float64) [][][]json.Number {
	rows := make([][][]json.Number, Height)
	for y := range rows {
		rows[y] = make([][]json.Number, Width)
		for x := range rows[y] {
			px := make([]json.Number, Channels)
			for c := range px {
				// The shortest form that reads back as the same float64, as Python's json writes
				// numpy's float64 values.
				px[c] = json.Number(strconv.FormatFloat(img[(y*Width+x)*Channels+c], 'g', -1, 64))
			}
			rows[y][x] = px
		}
	}
	return rows
}

// TensorflowJSON is the REST request for images: {"instances": [image, …]}, as the legacy example sends
// it to /v1/models/resnet32:predict.
func TensorflowJSON(images ...[]float64) []byte {
	inst := make([][][][]json.Number, len(images))
	for i, img := range images {
		inst[i] = nested(img)
	}
	b, err := json.Marshal(map[string]any{"instances": inst})
	if err != nil {
		panic(err) // numbers and lists only
	}
	return b
}

// PredictRequest is the gRPC request for images: input_1, a float tensor [n, 32, 32, 3] in float_val.
func PredictRequest(images ...[]float64) *tfpb.PredictRequest {
	vals := make([]float32, 0, len(images)*Height*Width*Channels)
	for _, img := range images {
		for _, v := range img {
			vals = append(vals, float32(v))
		}
	}
	dims := []*tfpb.TensorShapeProto_Dim{{Size: int64(len(images))}, {Size: Height}, {Size: Width}, {Size: Channels}}
	return &tfpb.PredictRequest{
		ModelSpec: &tfpb.ModelSpec{Name: ModelName},
		Inputs: map[string]*tfpb.TensorProto{InputName: {
			Dtype:       tfpb.DataType_DT_FLOAT,
			TensorShape: &tfpb.TensorShapeProto{Dim: dims},
			FloatVal:    vals,
		}},
	}
}
