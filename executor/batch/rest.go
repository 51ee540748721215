package batch

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/rest"
)

// A JSON request batches only when it is JSON (its Content-Type says so, or is absent) and its body
// is one valid JSON object: anything else goes to the model alone, which judges it as it would have.

func jsonBody(req *protocols.Request) (string, gjson.Result, bool) {
	if !rest.IsJSON(req.ContentType) || req.Decoded != nil {
		return "", gjson.Result{}, false
	}
	return object(req.Body)
}

func jsonAnswer(resp *protocols.Response) (string, gjson.Result, error) {
	if !rest.IsJSON(resp.ContentType) {
		return "", gjson.Result{}, mismatch("the answer is %s, not JSON", resp.ContentType)
	}
	doc, obj, ok := object(resp.Body)
	if !ok {
		return "", gjson.Result{}, mismatch("the answer is not a JSON object")
	}
	return doc, obj, nil
}

func jsonRequest(parts []part, body []byte) *protocols.Request {
	ct := parts[0].req.ContentType
	if ct == "" {
		ct = "application/json"
	}
	return &protocols.Request{Body: body, ContentType: ct}
}

// rowsDoc is a request whose rows are the elements of one array: TF Serving's instances, a
// SeldonMessage's data.ndarray.
type rowsDoc struct {
	doc  string
	rows gjson.Result
}

// readRows reads a request whose rows are arr's elements (each an array itself when nested): its key is
// its row shape and the rest of the body, which batch-mates must have byte for byte.
func readRows(req *protocols.Request, doc string, arr gjson.Result, nested bool) (part, bool) {
	if !arr.IsArray() {
		return part{}, false
	}
	n, row := countFirst(arr)
	if n == 0 || nested && !row.IsArray() {
		return part{}, false
	}
	return part{key: shapeOf(row) + "\x00" + without(doc, []span{spanOf(arr)}), rows: n, req: req,
		v: rowsDoc{doc: doc, rows: arr}}, true
}

// mergeRows splices every part's rows into the first's body.
func mergeRows(parts []part) *protocols.Request {
	arrays := make([]gjson.Result, len(parts))
	for i, p := range parts {
		arrays[i] = p.v.(rowsDoc).rows
	}
	first := parts[0].v.(rowsDoc)
	return jsonRequest(parts, replaced(first.doc, spanOf(first.rows), arrays...))
}

// splitRows cuts an answer whose rows are arr's elements: each record's answer is the batch's with
// only its own rows.
func splitRows(resp *protocols.Response, parts []part, doc string, arr gjson.Result, what string) ([]*protocols.Response, error) {
	if !arr.IsArray() {
		return nil, mismatch("the answer has no %s array", what)
	}
	spans, total := rowSpans(arr, rowsOf(parts), 1)
	if want := totalRows(parts); total != want {
		return nil, mismatch("%d rows in the answer's %s for %d sent", total, what, want)
	}
	out := make([]*protocols.Response, len(parts))
	for i, s := range spans {
		out[i] = &protocols.Response{ContentType: resp.ContentType, Body: keepRows(doc, spanOf(arr), s)}
	}
	return out, nil
}

// tensorflowREST batches TF Serving's row format: {"instances": [row, …]} answered by
// {"predictions": [row, …]}. The columnar format ("inputs") is called alone.
type tensorflowREST struct{}

func (tensorflowREST) read(req *protocols.Request) (part, bool) {
	doc, obj, ok := jsonBody(req)
	if !ok {
		return part{}, false
	}
	m, ok := members(obj, "instances", "inputs")
	if !ok || m[1].Exists() {
		return part{}, false
	}
	return readRows(req, doc, m[0], false)
}

func (tensorflowREST) merge(parts []part) *protocols.Request { return mergeRows(parts) }

func (tensorflowREST) split(resp *protocols.Response, parts []part) ([]*protocols.Response, error) {
	doc, obj, err := jsonAnswer(resp)
	if err != nil {
		return nil, err
	}
	m, ok := members(obj, "predictions")
	if !ok {
		return nil, mismatch("the answer repeats predictions")
	}
	return splitRows(resp, parts, doc, m[0], "predictions")
}

// seldonREST batches a SeldonMessage whose data is an ndarray of rows (each row an array): the
// Python wrapper hands the model a 2-D (or deeper) array whose first dimension is the batch. A 1-D
// ndarray, a tensor, tftensor, strData, jsonData or binData is called alone.
type seldonREST struct{}

func (seldonREST) read(req *protocols.Request) (part, bool) {
	doc, obj, ok := jsonBody(req)
	if !ok {
		return part{}, false
	}
	top, ok := members(obj, "data", "strData", "jsonData", "binData")
	if !ok || !top[0].IsObject() || top[1].Exists() || top[2].Exists() || top[3].Exists() {
		return part{}, false
	}
	data, ok := members(top[0], "ndarray", "tensor", "tftensor")
	if !ok || data[1].Exists() || data[2].Exists() {
		return part{}, false
	}
	return readRows(req, doc, data[0], true)
}

func (seldonREST) merge(parts []part) *protocols.Request { return mergeRows(parts) }

func (seldonREST) split(resp *protocols.Response, parts []part) ([]*protocols.Response, error) {
	doc, obj, err := jsonAnswer(resp)
	if err != nil {
		return nil, err
	}
	data, ok := members(obj, "data")
	if !ok || !data[0].IsObject() {
		return nil, mismatch("the answer has no data")
	}
	nd, ok := members(data[0], "ndarray")
	if !ok {
		return nil, mismatch("the answer repeats data.ndarray")
	}
	return splitRows(resp, parts, doc, nd[0], "data.ndarray")
}

// v2REST batches Open Inference Protocol requests: every input's shape[0] is the batch dimension, its
// data flat (row-major) or nested by row. Requests batch when everything but their id, shape[0] and
// data is the same byte for byte (names, datatypes, the other dimensions, requested outputs) and the
// data is laid out alike; a request with parameters, of its own or on an input, is called alone.
type v2REST struct{}

// v2Doc is a v2 request as read: its id, and each input's shape[0] and data.
type v2Doc struct {
	doc  string
	id   gjson.Result // not Exists when the request has none
	dim0 []gjson.Result
	data []gjson.Result
}

func (v2REST) read(req *protocols.Request) (part, bool) {
	doc, obj, ok := jsonBody(req)
	if !ok {
		return part{}, false
	}
	top, ok := members(obj, "id", "inputs", "parameters")
	if !ok || !top[1].IsArray() || top[2].Exists() {
		return part{}, false
	}
	d := v2Doc{doc: doc, id: top[0]}
	rows := -1
	var layout strings.Builder
	cuts := []span{}
	if d.id.Exists() {
		cuts = append(cuts, spanOf(d.id))
	}
	fine := true
	top[1].ForEach(func(_, in gjson.Result) bool {
		m, ok := members(in, "shape", "data", "parameters")
		if !ok || m[2].Exists() || !m[1].IsArray() {
			fine = false
			return false
		}
		dims, ok := intArray(m[0])
		if !ok || len(dims) == 0 || dims[0] < 1 || rows >= 0 && dims[0] != rows {
			fine = false
			return false
		}
		rows = dims[0]
		per, ok := perRow(dims)
		if !ok {
			fine = false
			return false
		}
		// The data holds rows×per numbers, or rows arrays of per each: either concatenates along the
		// batch dimension with its own kind, and a model would take both.
		n := count(m[1])
		flat := n == rows*per
		if !flat && n != rows {
			fine = false
			return false
		}
		layout.WriteString(strconv.FormatBool(flat))
		d.dim0 = append(d.dim0, first(m[0]))
		d.data = append(d.data, m[1])
		cuts = append(cuts, spanOf(d.dim0[len(d.dim0)-1]), spanOf(m[1]))
		return true
	})
	if !fine || rows < 1 {
		return part{}, false
	}
	return part{key: layout.String() + "\x00" + without(doc, cuts), rows: rows, req: req, v: d}, true
}

// intArray reads a JSON array of non-negative whole numbers, as a shape is written; the elements
// per row stay within what a request can hold.
func intArray(arr gjson.Result) ([]int, bool) {
	if !arr.IsArray() {
		return nil, false
	}
	var out []int
	ok := true
	arr.ForEach(func(_, v gjson.Result) bool {
		n, err := strconv.Atoi(v.Raw)
		if v.Type != gjson.Number || err != nil || n < 0 || n > 1<<31 {
			ok = false
			return false
		}
		out = append(out, n)
		return true
	})
	return out, ok
}

// perRow is the number of elements in a row of a tensor of shape dims: the product of dims[1:]. ok is
// false for an empty row or one too large for any request.
func perRow(dims []int) (per int, ok bool) {
	per = 1
	for _, x := range dims[1:] {
		if x < 1 || per > (1<<31)/x {
			return 0, false
		}
		per *= x
	}
	return per, true
}

func (v2REST) merge(parts []part) *protocols.Request {
	first := parts[0].v.(v2Doc)
	total := strconv.Itoa(totalRows(parts))
	var edits []edit
	for i := range first.data {
		arrays := make([]gjson.Result, len(parts))
		for j, p := range parts {
			arrays[j] = p.v.(v2Doc).data[i]
		}
		edits = append(edits, edit{spanOf(first.dim0[i]), total}, edit{spanOf(first.data[i]), concat(arrays)})
	}
	// The batch goes under the first record's id; each answer gets its own back.
	return jsonRequest(parts, splice(first.doc, edits))
}

func (v2REST) split(resp *protocols.Response, parts []part) ([]*protocols.Response, error) {
	doc, obj, err := jsonAnswer(resp)
	if err != nil {
		return nil, err
	}
	top, ok := members(obj, "id", "outputs")
	if !ok || !top[1].IsArray() {
		return nil, mismatch("the answer has no outputs")
	}
	rows, total := rowsOf(parts), totalRows(parts)
	edits := make([][]edit, len(parts))
	if id := top[0]; id.Exists() {
		for i, p := range parts {
			if own := p.v.(v2Doc).id; own.Exists() {
				edits[i] = append(edits[i], edit{spanOf(id), own.Raw})
			}
		}
	}
	top[1].ForEach(func(_, out gjson.Result) bool {
		m, ok := members(out, "shape", "data")
		dims, isShape := intArray(m[0])
		if !ok || !isShape || len(dims) == 0 || dims[0] != total || !m[1].IsArray() {
			err = mismatch("an output's shape is %s for %d rows sent", m[0].Raw, total)
			return false
		}
		per, isShape := perRow(dims)
		if !isShape {
			err = mismatch("an output's shape is %s", m[0].Raw)
			return false
		}
		spans, n := rowSpans(m[1], rows, per)
		if n != total*per {
			// Nested by row rather than flat.
			if spans, n = rowSpans(m[1], rows, 1); n != total {
				err = mismatch("an output's data holds %d elements for shape %s", n, m[0].Raw)
				return false
			}
		}
		dim0 := first(m[0])
		for i, s := range spans {
			edits[i] = append(edits[i], edit{spanOf(dim0), strconv.Itoa(rows[i])},
				edit{spanOf(m[1]), "[" + doc[s.from:s.to] + "]"})
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]*protocols.Response, len(parts))
	for i := range parts {
		out[i] = &protocols.Response{ContentType: resp.ContentType, Body: splice(doc, edits[i])}
	}
	return out, nil
}
