package sdep

import "testing"

// The hashes below were computed with md5sum, not with this package.
func TestDeploymentNameIsTheOperators(t *testing.T) {
	cases := []struct {
		name            string
		sdep, predictor string
		index           int
		metadataName    string
		containers      []string
		prefix          bool
		want            string
	}{
		{name: "containers joined", sdep: "iris", predictor: "main", index: 1, containers: []string{"transformer", "logger"},
			want: "iris-main-1-transformer-logger"},
		{name: "metadata name wins over containers", sdep: "iris", predictor: "main", index: 0, metadataName: "model-pod", containers: []string{"classifier"},
			want: "iris-main-0-model-pod"},
		{name: "exactly 63 characters is kept", sdep: "s", predictor: "p", index: 0, containers: []string{"c23456789012345678901234567890123456789012345678901234567"},
			want: "s-p-0-c23456789012345678901234567890123456789012345678901234567"},
		{name: "past 63 characters: seldon-md5", sdep: "a-very-long-seldon-deployment-name-for-testing-hashes", predictor: "p", index: 0, containers: []string{"classifier", "transformer"},
			want: "seldon-d115c9fed3c7ccc23abf0b80e8425760"},
		{name: "DEPLOYMENT_NAME_AS_PREFIX: <sdep>-md5 when it fits", sdep: "short-sdep", predictor: "a-really-long-predictor-name-for-prefix-mode", index: 0, containers: []string{"classifier", "x"}, prefix: true,
			want: "short-sdep-4fda52bd297849f9b51e08f5a3abab5c"},
		{name: "DEPLOYMENT_NAME_AS_PREFIX: seldon-md5 when <sdep>-md5 does not fit", sdep: "averyveryveryverylongseldondeploymentnamethatisfortyfivecharacters", predictor: "main", index: 0, containers: []string{"model", "container", "name"}, prefix: true,
			want: "seldon-966d5808301c10bdb63ed9036890457b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DeploymentName(tc.sdep, tc.predictor, tc.index, tc.metadataName, tc.containers, tc.prefix)
			if got != tc.want {
				t.Errorf("DeploymentName = %q, want %q", got, tc.want)
			}
			if len(got) > 63 {
				t.Errorf("%q is %d characters", got, len(got))
			}
		})
	}
}

func TestSeldonIDHashesPast63Characters(t *testing.T) {
	if got := SeldonID("iris"); got != "iris" {
		t.Errorf("SeldonID(iris) = %q", got)
	}
	long := "this-seldon-deployment-name-is-longer-than-sixty-three-characters-x"
	if got, want := SeldonID(long), "seldon-ae0f791d84c0580851c4e8c30e7ba67c"; got != want {
		t.Errorf("SeldonID(%d chars) = %q, want %q", len(long), got, want)
	}
}

func TestDefaultedContainersAddPrepackagedServersToTheFirstComponentSpec(t *testing.T) {
	p := PredictorSpec{
		Name: "p",
		Graph: PredictiveUnit{Name: "router", Implementation: "RANDOM_ABTEST", Children: []PredictiveUnit{
			{Name: "a", Implementation: "SKLEARN_SERVER"},
			{Name: "b", Implementation: "XGBOOST_SERVER"},
			{Name: "custom", Type: "MODEL"},
		}},
		ComponentSpecs: []ComponentSpec{
			{Spec: PodSpec{Containers: []Container{{Name: "custom"}}}},
			{Spec: PodSpec{Containers: []Container{{Name: "b"}}}},
		},
	}
	got := p.DefaultedContainers()
	want := [][]string{{"custom", "a"}, {"b"}}
	if len(got) != len(want) || len(got[0]) != 2 || got[0][0] != "custom" || got[0][1] != "a" || len(got[1]) != 1 || got[1][0] != "b" {
		t.Errorf("DefaultedContainers = %q, want %q", got, want)
	}
}

func TestEngineComponentIsWhereTheOperatorPutsTheSidecar(t *testing.T) {
	model := PredictorSpec{Name: "p", Graph: PredictiveUnit{Name: "m"},
		ComponentSpecs: []ComponentSpec{{Spec: PodSpec{Containers: []Container{{Name: "m"}}}}, {Spec: PodSpec{Containers: []Container{{Name: "x"}}}}}}
	noEngine := model
	noEngine.Annotations = map[string]string{AnnotationNoEngine: "true"}
	elsewhere := PredictorSpec{Name: "p", Graph: PredictiveUnit{Name: "m"},
		ComponentSpecs: []ComponentSpec{{Spec: PodSpec{Containers: []Container{{Name: "logger"}}}}, {Spec: PodSpec{Containers: []Container{{Name: "m"}}}}}}
	separate := SeldonDeployment{Spec: Spec{Annotations: map[string]string{AnnotationSeparateEngine: "true"}}}
	cases := []struct {
		name         string
		d            SeldonDeployment
		p            PredictorSpec
		wantIndex    int
		wantSeparate bool
	}{
		{"graph node in componentSpecs[0]", SeldonDeployment{}, model, 0, false},
		{"separate engine pod", separate, model, -1, true},
		{"no engine", SeldonDeployment{}, noEngine, -1, false},
		{"no graph node in componentSpecs[0]", SeldonDeployment{}, elsewhere, -1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i, sep := tc.d.EngineComponent(tc.p)
			if i != tc.wantIndex || sep != tc.wantSeparate {
				t.Errorf("EngineComponent = %d, %v; want %d, %v", i, sep, tc.wantIndex, tc.wantSeparate)
			}
		})
	}
}
