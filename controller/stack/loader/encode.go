package loader

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/transform"
	"github.com/compose-spec/compose-go/v2/types"
)

// projectModel is what crosses from the child to the parent: the project in
// compose-go's own JSON form (the form `docker compose config --format
// json` prints), plus the fields compose-go keeps out of it (json:"-").
//
// The parent turns the JSON back into a Project with compose-go's own
// decoder (loader.Transform, the step that turns a loaded YAML tree into a
// Project), which reads no file: the JSON form is the compose file format.
type projectModel struct {
	Project          json.RawMessage `json:"project"`
	WorkingDir       string          `json:"working_dir"`
	ComposeFiles     []string        `json:"compose_files"`
	Environment      types.Mapping   `json:"environment"`
	DisabledServices []string        `json:"disabled_services"`
	Profiles         []string        `json:"profiles"`
}

func fromProject(p *types.Project) (*projectModel, error) {
	b, err := p.MarshalJSON()
	if err != nil {
		return nil, err
	}
	m := &projectModel{
		Project:      b,
		WorkingDir:   p.WorkingDir,
		ComposeFiles: p.ComposeFiles,
		Environment:  p.Environment,
		Profiles:     p.Profiles,
	}
	for name := range p.DisabledServices {
		m.DisabledServices = append(m.DisabledServices, name)
	}
	return m, nil
}

func encodeProject(m *projectModel) ([]byte, error) {
	return json.Marshal(m)
}

func decodeProject(b []byte) (*types.Project, error) {
	var m projectModel
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(m.Project))
	dec.UseNumber()
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	if tree == nil {
		return nil, errNoProject
	}
	p, err := toProject(intNumbers(tree).(map[string]any))
	if err != nil {
		return nil, fmt.Errorf("compose model: %w", err)
	}
	p.WorkingDir = m.WorkingDir
	p.ComposeFiles = m.ComposeFiles
	p.Environment = m.Environment
	p.Profiles = m.Profiles
	if len(m.DisabledServices) > 0 {
		p.DisabledServices = types.Services{}
		for _, name := range m.DisabledServices {
			p.DisabledServices[name] = types.ServiceConfig{Name: name}
		}
	}
	return p, nil
}

// toProject runs the pure steps of compose-go's own loading on the tree:
// canonical forms, default values (the JSON form omits attributes at their
// default, such as env_file's required: true), then the decoder. None of
// them reads a file. Panics (a hook meeting a type it does not expect) become
// errors: the parent must survive whatever the child sends.
func toProject(tree map[string]any) (p *types.Project, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unexpected model: %v", r)
		}
	}()
	tree, err = transform.Canonical(tree, true)
	if err != nil {
		return nil, err
	}
	tree, err = transform.SetDefaultValues(tree)
	if err != nil {
		return nil, err
	}
	p = &types.Project{}
	if err := loader.Transform(tree, p); err != nil {
		return nil, err
	}
	p.Extensions = types.Extensions{}
	for k, v := range tree {
		if strings.HasPrefix(k, "x-") {
			p.Extensions[k] = v
		}
	}
	if len(p.Extensions) == 0 {
		p.Extensions = nil
	}
	return p, nil
}

// intNumbers turns JSON numbers into the values a YAML parse gives
// compose-go: int where the number is whole, float64 otherwise.
func intNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = intNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = intNumbers(e)
		}
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return int(i)
		}
		f, _ := v.Float64()
		return f
	}
	return v
}
