package testmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// The seldon graph nodes. A Seldon Core v1 inference graph is made of model, transformer, output
// transformer, router and combiner nodes, each a microservice the executor calls on its own route. Every
// test model answers all of them, so one binary can stand for any node; the functions are chosen so that
// a test can tell from the final numbers which nodes a request went through: a transformer doubles, an
// output transformer adds 1, a combiner averages, a router routes on the first number.

// Tags a client puts in meta.tags to make one node of a graph misbehave for one request. Seldon's
// wrapper carries tags from node to node, so they reach every node the request visits; the node whose
// name (Options.ModelName) is the tag's string value acts on it. See Server.
const (
	// FailNodeTag makes the named node answer 500 (gRPC Internal).
	FailNodeTag = "fail-node"
	// SlowNodeTag makes the named node wait Options.SlowDelay before answering.
	SlowNodeTag = "slow-node"
)

// SeldonTransformInput answers a SeldonMessage the way a test model named name, reporting image, does
// on POST /transform-input: every number of data.ndarray (a 2-D array, rows of equal length) or of
// data.tensor.values (any shape that matches the values) is doubled, in the same representation and
// shape, with the request's data.names (or []). jsonData, strData and binData are echoed. meta is
// composed as for SeldonPredictWithImage.
func SeldonTransformInput(name, image string, req []byte) ([]byte, error) {
	return seldonAnswer(name, image, req, func(d *seldonData) (*seldonOutData, error) { return seldonMap(d, doubling) })
}

// SeldonTransformOutput answers a SeldonMessage the way a test model named name, reporting image, does
// on POST /transform-output: as SeldonTransformInput, adding 1 to every number instead of doubling it.
func SeldonTransformOutput(name, image string, req []byte) ([]byte, error) {
	return seldonAnswer(name, image, req, func(d *seldonData) (*seldonOutData, error) { return seldonMap(d, addingOne) })
}

// SeldonRouteOf is the child a test router sends a SeldonMessage to: RouteFor of the first number of
// its first row, data.ndarray[0][0] or data.tensor.values[0].
func SeldonRouteOf(req []byte) (int, error) {
	var in seldonRequest
	if err := decodeObject(req, &in); err != nil {
		return 0, err
	}
	return seldonRouteOf(in.Data)
}

// SeldonRoute answers a SeldonMessage the way a test model named name, reporting image, does on POST
// /route: {"data":{"names":["t:0"],"ndarray":[[route]]},"meta":{...}} with route as SeldonRouteOf. As
// the Python wrapper passes no meta into a router's answer, meta holds only the request's puid and
// requestPath {name: image}: the request's tags, metrics and requestPath are not carried on.
func SeldonRoute(name, image string, req []byte) ([]byte, error) {
	var in seldonRequest
	if err := decodeObject(req, &in); err != nil {
		return nil, err
	}
	route, err := seldonRouteOf(in.Data)
	if err != nil {
		return nil, err
	}
	var out struct {
		Data struct {
			Names   []string `json:"names"`
			Ndarray [][]int  `json:"ndarray"`
		} `json:"data"`
		Meta seldonMeta `json:"meta"`
	}
	out.Data.Names = []string{"t:0"}
	out.Data.Ndarray = [][]int{{route}}
	out.Meta = composeMeta(name, image, seldonInMeta{Puid: in.Meta.Puid})
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode seldon route: %w", err)
	}
	return b, nil
}

func seldonRouteOf(d *seldonData) (int, error) {
	if d == nil {
		return 0, errors.New("route needs data.ndarray or data.tensor")
	}
	shape, values, err := seldonValues(d)
	if err != nil {
		return 0, fmt.Errorf("data: %w", err)
	}
	if len(values) == 0 {
		return 0, fmt.Errorf("data of shape %v has no number to route on", shape)
	}
	return RouteFor(values[0]), nil
}

// SeldonAggregate answers the way a test model named name, reporting image, does on POST /aggregate,
// the combiner. req is a JSON array of SeldonMessages, the legacy executor's REST form, or a
// SeldonMessageList {"seldonMessages": [...]}. Each message needs data.ndarray or data.tensor, all of the
// same shape; the answer is their element-wise mean in the representation, shape and names of the first.
// meta merges the messages' metas as the wrapper's merge_meta does (tags and requestPath merged, later
// messages winning; metrics concatenated), with the first message's puid, then composes it as every
// node does (requestPath {name: image} under the merged one).
func SeldonAggregate(name, image string, req []byte) ([]byte, error) {
	msgs, err := decodeSeldonList(req)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, errors.New("no SeldonMessages to aggregate")
	}
	merged := seldonInMeta{Puid: msgs[0].Meta.Puid}
	for _, m := range msgs {
		if len(m.Meta.Tags) > 0 {
			if merged.Tags == nil {
				merged.Tags = map[string]json.RawMessage{}
			}
			maps.Copy(merged.Tags, m.Meta.Tags)
		}
		merged.Metrics = append(merged.Metrics, m.Meta.Metrics...)
		if len(m.Meta.RequestPath) > 0 {
			if merged.RequestPath == nil {
				merged.RequestPath = map[string]string{}
			}
			maps.Copy(merged.RequestPath, m.Meta.RequestPath)
		}
	}
	data, err := seldonMean(msgs)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(seldonResponse{Data: data, Meta: composeMeta(name, image, merged)})
	if err != nil {
		return nil, fmt.Errorf("encode seldon response: %w", err)
	}
	return b, nil
}

// decodeSeldonList decodes a bare JSON array of SeldonMessages or a SeldonMessageList.
func decodeSeldonList(req []byte) ([]seldonRequest, error) {
	if trimmed := bytes.TrimLeft(req, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		var list struct {
			SeldonMessages *[]seldonRequest `json:"seldonMessages"`
		}
		if err := decodeObject(req, &list); err != nil {
			return nil, err
		}
		if list.SeldonMessages == nil {
			return nil, errors.New(`a SeldonMessageList needs "seldonMessages"`)
		}
		return *list.SeldonMessages, nil
	}
	var msgs []seldonRequest
	if err := decodeArray(req, &msgs); err != nil {
		return nil, err
	}
	return msgs, nil
}

// seldonMean is the element-wise mean of the messages' data.
func seldonMean(msgs []seldonRequest) (*seldonOutData, error) {
	var shape []int
	var sums []float64
	for i, m := range msgs {
		if m.Data == nil {
			return nil, fmt.Errorf("message %d: aggregate needs data.ndarray or data.tensor", i)
		}
		s, values, err := seldonValues(m.Data)
		if err != nil {
			return nil, fmt.Errorf("message %d: data: %w", i, err)
		}
		if i == 0 {
			shape, sums = s, make([]float64, len(values))
		} else if !slices.Equal(s, shape) {
			return nil, fmt.Errorf("message %d has shape %v, message 0 has %v", i, s, shape)
		}
		for j, v := range values {
			sums[j] += v
		}
	}
	means := make([]number, len(sums))
	for j, sum := range sums {
		means[j] = number(sum / float64(len(msgs)))
		if !finite(float64(means[j])) {
			return nil, fmt.Errorf("the mean of element %d overflows float64", j)
		}
	}
	first := msgs[0].Data
	out := &seldonOutData{Names: seldonNames(first)}
	if first.Tensor != nil {
		out.Tensor = &seldonTensor{Shape: shape, Values: means}
		return out, nil
	}
	rows := make([][]number, shape[0])
	for r := range rows {
		rows[r] = means[r*shape[1] : (r+1)*shape[1]]
	}
	out.Ndarray = rows
	return out, nil
}

// seldonMap applies a to every number of a message's data, keeping its representation and shape.
func seldonMap(d *seldonData, a arith) (*seldonOutData, error) {
	shape, values, err := seldonValues(d)
	if err != nil {
		return nil, err
	}
	mapped := make([]number, len(values))
	for i, v := range values {
		r, err := a.float64(v)
		if err != nil {
			return nil, fmt.Errorf("value %d: %w float64", i, err)
		}
		mapped[i] = number(r)
	}
	out := &seldonOutData{Names: seldonNames(d)}
	if d.Tensor != nil {
		out.Tensor = &seldonTensor{Shape: shape, Values: mapped}
		return out, nil
	}
	rows := make([][]number, shape[0])
	for r := range rows {
		rows[r] = mapped[r*shape[1] : (r+1)*shape[1]]
	}
	out.Ndarray = rows
	return out, nil
}

// seldonNames are a message's data.names, [] rather than null when it has none, as the wrapper writes
// them.
func seldonNames(d *seldonData) []string {
	if d.Names == nil {
		return []string{}
	}
	return d.Names
}

// seldonValues returns the shape and the row-major numbers of data.ndarray, which must be 2-D with rows
// of equal length (shape [rows, cols]), or of data.tensor, whose shape must match its values.
func seldonValues(d *seldonData) (shape []int, values []float64, err error) {
	if len(d.TFTensor) > 0 && string(d.TFTensor) != "null" {
		return nil, nil, errors.New("tftensor is not supported, send ndarray or tensor")
	}
	switch {
	case d.Ndarray != nil && d.Tensor != nil:
		return nil, nil, errors.New("send either ndarray or tensor, not both")
	case d.Ndarray != nil:
		rows := *d.Ndarray
		cols := 0
		if len(rows) > 0 {
			cols = len(rows[0])
		}
		for i, row := range rows {
			if len(row) != cols {
				return nil, nil, fmt.Errorf("ndarray row %d has %d numbers, row 0 has %d (ragged)", i, len(row), cols)
			}
			for _, v := range row {
				values = append(values, float64(v))
			}
		}
		return []int{len(rows), cols}, values, nil
	case d.Tensor != nil:
		shape64 := make([]int64, len(d.Tensor.Shape))
		for i, dim := range d.Tensor.Shape {
			shape64[i] = int64(dim)
		}
		if err := checkShape(shape64, len(d.Tensor.Values)); err != nil {
			return nil, nil, fmt.Errorf("tensor: %w", err)
		}
		values = make([]float64, len(d.Tensor.Values))
		for i, v := range d.Tensor.Values {
			values[i] = float64(v)
		}
		return slices.Clone(d.Tensor.Shape), values, nil
	default:
		return nil, nil, errors.New("needs ndarray or tensor")
	}
}

// nodeTriggers are the faults a request's tags ask of this node.
type nodeTriggers struct{ slow, fail bool }

// seldonTriggers reads the fault tags naming node from a REST body: one SeldonMessage, or the messages
// of an aggregate body. A body too broken to read triggers nothing; the answer then refuses it.
func seldonTriggers(node string, body []byte) nodeTriggers {
	type tagged struct {
		Meta struct {
			Tags map[string]json.RawMessage `json:"tags"`
		} `json:"meta"`
	}
	var msgs []tagged
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		// Errors are ignored: Unmarshal fills in what it can, and whatever it could not read is no tag.
		_ = json.Unmarshal(body, &msgs)
	} else {
		var one struct {
			tagged
			SeldonMessages []tagged `json:"seldonMessages"`
		}
		_ = json.Unmarshal(body, &one)
		msgs = append(one.SeldonMessages, one.tagged)
	}
	names := func(raw json.RawMessage) bool {
		var s string
		return json.Unmarshal(raw, &s) == nil && s == node
	}
	var t nodeTriggers
	for _, m := range msgs {
		t.slow = t.slow || names(m.Meta.Tags[SlowNodeTag])
		t.fail = t.fail || names(m.Meta.Tags[FailNodeTag])
	}
	return t
}
