package testmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
)

// DefaultImage is what a seldon node reports as its image in meta.requestPath
// when Options.Image is empty.
const DefaultImage = "testmodel"

type seldonRequest struct {
	Data     *seldonData     `json:"data"`
	JSONData json.RawMessage `json:"jsonData"`
	StrData  *string         `json:"strData"`
	BinData  *[]byte         `json:"binData"`
	Meta     seldonInMeta    `json:"meta"`
}

// seldonInMeta is the part of a request's meta that the Python wrapper
// carries into its answer. Tags and metrics stay raw JSON so that whatever a
// client or an upstream node put there comes back unchanged.
type seldonInMeta struct {
	Puid        string                     `json:"puid"`
	Tags        map[string]json.RawMessage `json:"tags"`
	Metrics     []json.RawMessage          `json:"metrics"`
	RequestPath map[string]string          `json:"requestPath"`
}

type seldonData struct {
	Names    []string        `json:"names"`
	Ndarray  *[][]number     `json:"ndarray"`
	Tensor   *seldonTensor   `json:"tensor"`
	TFTensor json.RawMessage `json:"tftensor"`
}

type seldonTensor struct {
	Shape  []int    `json:"shape"`
	Values []number `json:"values"`
}

type seldonResponse struct {
	Data     *seldonOutData  `json:"data,omitempty"`
	JSONData json.RawMessage `json:"jsonData,omitempty"`
	StrData  *string         `json:"strData,omitempty"`
	BinData  *[]byte         `json:"binData,omitempty"`
	Meta     seldonMeta      `json:"meta"`
}

type seldonOutData struct {
	Names []string `json:"names"`
	// Ndarray is an interface so that an empty batch still encodes as [].
	Ndarray any           `json:"ndarray,omitempty"`
	Tensor  *seldonTensor `json:"tensor,omitempty"`
}

// seldonMeta is an answer's meta, its fields in the order the Python
// wrapper writes them.
type seldonMeta struct {
	Tags        map[string]json.RawMessage `json:"tags,omitempty"`
	Metrics     []json.RawMessage          `json:"metrics,omitempty"`
	Puid        string                     `json:"puid,omitempty"`
	RequestPath map[string]string          `json:"requestPath"`
}

// composeMeta is the meta a node answers with, as the Python wrapper's
// construct_response_json builds it (seldon-core 1.18): the incoming tags,
// metrics and puid carried on, and requestPath {name: image} merged with the
// incoming requestPath, whose entries win, so the path a request took
// accumulates node by node.
func composeMeta(name, image string, in seldonInMeta) seldonMeta {
	path := map[string]string{name: image}
	maps.Copy(path, in.RequestPath)
	return seldonMeta{Tags: in.Tags, Metrics: in.Metrics, Puid: in.Puid, RequestPath: path}
}

// SeldonPredict answers a Seldon Core v1 SeldonMessage the way the test model
// does on POST /predict. It is SeldonPredictWithImage with DefaultImage.
func SeldonPredict(model string, req []byte) ([]byte, error) {
	return SeldonPredictWithImage(model, DefaultImage, req)
}

// SeldonPredictWithImage answers a SeldonMessage the way a test model named
// name, reporting image, does on POST /predict.
//
// For data.ndarray (a 2-D array of numbers) or data.tensor (shape [rows,
// cols]) every row becomes [sum, product] of its numbers, in float64, in the
// same representation as the input, with names ["sum","product"]. jsonData,
// strData and binData are echoed back in the same field. meta is composed as
// the Python wrapper does (see composeMeta): tags, metrics and puid carried
// on, requestPath {name: image} merged with the request's.
func SeldonPredictWithImage(name, image string, req []byte) ([]byte, error) {
	return seldonAnswer(name, image, req, seldonRowStats)
}

// seldonAnswer decodes a SeldonMessage and answers it with data computed by
// f, other payloads echoed, and meta composed.
func seldonAnswer(name, image string, req []byte, f func(*seldonData) (*seldonOutData, error)) ([]byte, error) {
	var in seldonRequest
	if err := decodeObject(req, &in); err != nil {
		return nil, err
	}
	out := seldonResponse{Meta: composeMeta(name, image, in.Meta)}
	present := 0
	if in.Data != nil {
		present++
		data, err := f(in.Data)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		out.Data = data
	}
	if len(in.JSONData) > 0 && string(in.JSONData) != "null" {
		present++
		out.JSONData = in.JSONData
	}
	if in.StrData != nil {
		present++
		out.StrData = in.StrData
	}
	if in.BinData != nil {
		present++
		out.BinData = in.BinData
	}
	if present != 1 {
		return nil, fmt.Errorf("a SeldonMessage needs exactly one of data, jsonData, strData, binData; got %d", present)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode seldon response: %w", err)
	}
	return b, nil
}

func seldonRowStats(d *seldonData) (*seldonOutData, error) {
	if len(d.TFTensor) > 0 && string(d.TFTensor) != "null" {
		return nil, errors.New("tftensor is not supported, send ndarray or tensor")
	}
	names := []string{"sum", "product"}
	switch {
	case d.Ndarray != nil && d.Tensor != nil:
		return nil, errors.New("send either ndarray or tensor, not both")
	case d.Ndarray != nil:
		rows := make([][2]float64, len(*d.Ndarray))
		for i, row := range *d.Ndarray {
			stats, err := rowStats(row)
			if err != nil {
				return nil, fmt.Errorf("ndarray row %d: %w", i, err)
			}
			rows[i] = stats
		}
		return &seldonOutData{Names: names, Ndarray: rows}, nil
	case d.Tensor != nil:
		t, err := tensorRowStats(d.Tensor)
		if err != nil {
			return nil, fmt.Errorf("tensor: %w", err)
		}
		return &seldonOutData{Names: names, Tensor: t}, nil
	default:
		return nil, errors.New("needs ndarray or tensor")
	}
}

func tensorRowStats(t *seldonTensor) (*seldonTensor, error) {
	if len(t.Shape) != 2 {
		return nil, fmt.Errorf("shape must be [rows, cols], got %v", t.Shape)
	}
	rows, cols := t.Shape[0], t.Shape[1]
	if rows < 0 || cols < 0 {
		return nil, fmt.Errorf("shape %v has a negative dimension", t.Shape)
	}
	// Dividing instead of multiplying keeps absurd shapes from overflowing.
	if rows > 0 && (cols == 0 || cols != len(t.Values)/rows || len(t.Values)%rows != 0) {
		return nil, fmt.Errorf("shape %v does not match %d values (rows must not be empty)", t.Shape, len(t.Values))
	}
	if rows == 0 && len(t.Values) != 0 {
		return nil, fmt.Errorf("shape %v does not match %d values", t.Shape, len(t.Values))
	}
	out := &seldonTensor{Shape: []int{rows, 2}, Values: make([]number, 0, 2*rows)}
	for r := 0; r < rows; r++ {
		stats, err := rowStats(t.Values[r*cols : (r+1)*cols])
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", r, err)
		}
		out.Values = append(out.Values, number(stats[0]), number(stats[1]))
	}
	return out, nil
}

// rowStats returns the sum and the product of a row.
func rowStats(row []number) ([2]float64, error) {
	if len(row) == 0 {
		return [2]float64{}, errors.New("row is empty")
	}
	sum, product := 0.0, 1.0
	for _, v := range row {
		sum += float64(v)
		product *= float64(v)
	}
	// encoding/json cannot write Inf or NaN, and a real model would reject
	// such input anyway.
	if !finite(sum) || !finite(product) {
		return [2]float64{}, errors.New("sum or product overflows float64")
	}
	return [2]float64{sum, product}, nil
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }
