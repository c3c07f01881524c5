package swarm

import (
	"slices"
	"testing"
)

func TestRoutedNetworks(t *testing.T) {
	cases := []struct {
		name    string
		compose string
		want    []string
	}{
		{
			name: "the default network of a routed service",
			compose: `services:
  web: {image: web, ports: ["8080"]}
`,
			want: []string{"acme-shop-pr-7_default"},
		},
		{
			name: "only the networks a routed service is on",
			compose: `services:
  web:
    image: web
    ports: ["8080"]
    networks: [front, back]
  api: {image: api, networks: [back]}
  db: {image: postgres, networks: [data]}
networks:
  front: {}
  back: {}
  data: {internal: true}
`,
			want: []string{"acme-shop-pr-7_back", "acme-shop-pr-7_front"},
		},
		{
			// Marked external below: the default policy refuses external
			// networks, an operator's may allow them.
			name: "no external network: Slipway did not make it",
			compose: `services:
  web:
    image: web
    ports: ["8080"]
    networks: [shared, front]
networks:
  front: {}
  shared: {}
`,
			want: []string{"acme-shop-pr-7_front"},
		},
		{
			name: "no routed service, no network",
			compose: `services:
  worker: {image: worker}
`,
			want: nil,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := loadPlan(t, c.compose, nil)
			if n, ok := p.Project.Networks["shared"]; ok {
				n.External = true
				p.Project.Networks["shared"] = n
			}
			if got := routedNetworks(p); !slices.Equal(got, c.want) {
				t.Errorf("routedNetworks = %q, want %q (routes %+v)", got, c.want, p.Routes)
			}
		})
	}
}
