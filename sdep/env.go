package sdep

import (
	"fmt"
	"strings"
)

// ResolvedEnv is one variable of the sidecar container as Kubernetes gives it to the process.
type ResolvedEnv struct {
	EnvVar
	Expanded string   // Value after $(VAR) expansion; meaningful when Known
	Known    bool     // inline, and every $(VAR) in it expanded from values known here
	Needs    string   // when not Known: where the value comes from, said for a diagnostic
	Literal  []string // the $(VAR) references left as written: no variable of that name comes before it
}

// OperatorEnv are the variables the Seldon operator puts before svcOrchSpec.env in the sidecar container
// (createExecutorContainer in operator/controllers/seldondeployment_engine.go): a $(VAR) of one of them
// expands, to a value not known here.
var OperatorEnv = []string{"ENGINE_PREDICTOR", "REQUEST_LOGGER_DEFAULT_ENDPOINT"}

// ResolveEnv gives each variable of svcOrchSpec.env the value the sidecar process sees. Kubernetes
// expands $(VAR) in an inline value from the variables before it in the container's list (kubelet's
// makeEnvironmentVariables with third_party/forked/golang/expansion): $$ is a literal $, and a reference
// to a name not defined before it stays as written. A repeated name takes its last definition.
func ResolveEnv(vars []EnvVar) map[string]ResolvedEnv {
	defined := make(map[string]ResolvedEnv, len(vars)+len(OperatorEnv))
	for _, n := range OperatorEnv {
		defined[n] = ResolvedEnv{EnvVar: EnvVar{Name: n}, Needs: "a value the Seldon operator sets"}
	}
	out := make(map[string]ResolvedEnv, len(vars))
	for _, v := range vars {
		e := ResolvedEnv{EnvVar: v}
		if v.Value == "" && v.ValueFrom != nil {
			e.Needs = v.Source()
		} else {
			var needs []string
			e.Expanded = ExpandEnv(v.Value, func(name string) (string, bool) {
				d, ok := defined[name]
				switch {
				case !ok:
					e.Literal = append(e.Literal, name)
					return "", false
				case !d.Known:
					needs = append(needs, fmt.Sprintf("$(%s) from %s", name, d.Needs))
				}
				return d.Expanded, true
			})
			e.Known = len(needs) == 0
			if !e.Known {
				e.Needs = fmt.Sprintf("an inline value %q whose %s", v.Value, strings.Join(needs, " and "))
			}
		}
		defined[v.Name] = e
		out[v.Name] = e
	}
	return out
}

// ExpandEnv is Kubernetes' expansion of $(VAR) (k8s.io/kubernetes third_party/forked/golang/expansion,
// Expand): lookup gives a name's value, or false to leave the reference as written.
func ExpandEnv(in string, lookup func(name string) (string, bool)) string {
	var b strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(in); cursor++ {
		if in[cursor] != '$' || cursor+1 >= len(in) {
			continue
		}
		b.WriteString(in[checkpoint:cursor])
		rest := in[cursor+1:]
		advance := 1
		switch rest[0] {
		case '$': // an escaped operator
			b.WriteByte('$')
		case '(':
			if end := strings.IndexByte(rest, ')'); end > 0 {
				name := rest[1:end]
				if v, ok := lookup(name); ok && name != "" {
					b.WriteString(v)
				} else {
					b.WriteString("$(" + name + ")")
				}
				advance = end + 1
			} else {
				b.WriteString("$(") // no closing parenthesis: kept as written
			}
		default:
			b.WriteString(in[cursor : cursor+2])
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return b.String() + in[checkpoint:]
}

// Source says where a variable's value comes from, for diagnostics.
func (v EnvVar) Source() string {
	switch {
	case v.ValueFrom == nil:
		return "an inline value"
	case v.ValueFrom.SecretKeyRef != nil:
		return fmt.Sprintf("secretKeyRef %s/%s", v.ValueFrom.SecretKeyRef.Name, v.ValueFrom.SecretKeyRef.Key)
	case v.ValueFrom.ConfigMapKeyRef != nil:
		return fmt.Sprintf("configMapKeyRef %s/%s", v.ValueFrom.ConfigMapKeyRef.Name, v.ValueFrom.ConfigMapKeyRef.Key)
	}
	return "a valueFrom this tool cannot follow"
}
