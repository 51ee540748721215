package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
)

// modelJSON is the fitted classifier: fit.py writes it with scikit-learn.
//
//go:embed model.json
var modelJSON []byte

// Model is a multinomial logistic regression: for a row x of the features, the probability of class k
// is softmax(Coef·x + Intercept)[k], which is scikit-learn's LogisticRegression.predict_proba.
type Model struct {
	About     string      `json:"about"`
	Features  []string    `json:"features"`
	Classes   []string    `json:"classes"`
	Coef      [][]float64 `json:"coef"`
	Intercept []float64   `json:"intercept"`
	// Checks are rows and the probabilities scikit-learn gave them when it fitted the model.
	Checks []struct {
		X     []float64 `json:"x"`
		Proba []float64 `json:"proba"`
	} `json:"checks"`
}

// loadModel reads and checks the embedded model.
func loadModel() (*Model, error) {
	var m Model
	if err := json.Unmarshal(modelJSON, &m); err != nil {
		return nil, fmt.Errorf("model.json: %w", err)
	}
	if len(m.Coef) != len(m.Classes) || len(m.Intercept) != len(m.Classes) || len(m.Classes) < 2 {
		return nil, fmt.Errorf("model.json: %d classes, %d rows of coefficients, %d intercepts", len(m.Classes), len(m.Coef), len(m.Intercept))
	}
	for _, row := range m.Coef {
		if len(row) != len(m.Features) {
			return nil, fmt.Errorf("model.json: a row of %d coefficients for %d features", len(row), len(m.Features))
		}
	}
	return &m, nil
}

// Proba is the probability of each class for one row of features.
func (m *Model) Proba(x []float64) ([]float64, error) {
	if len(x) != len(m.Features) {
		return nil, fmt.Errorf("a row has %d values; want %d: %v", len(x), len(m.Features), m.Features)
	}
	scores := make([]float64, len(m.Classes))
	top := math.Inf(-1)
	for k, w := range m.Coef {
		s := m.Intercept[k]
		for i, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s is %v: want a finite number", m.Features[i], v)
			}
			s += w[i] * v
		}
		scores[k] = s
		top = max(top, s)
	}
	var sum float64
	for k, s := range scores {
		scores[k] = math.Exp(s - top) // less the largest, so that no exponential overflows
		sum += scores[k]
	}
	for k := range scores {
		scores[k] /= sum
	}
	return scores, nil
}
