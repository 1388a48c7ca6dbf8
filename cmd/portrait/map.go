package main

import (
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/bizmap"
	"github.com/portrait-cdp/portrait/journey"
	"github.com/portrait-cdp/portrait/needs"
	"github.com/portrait-cdp/portrait/profile"
)

// mapConfig is the --map file: the service path, the needs taxonomy and
// the map's recommendation rules; each part left out keeps its default.
type mapConfig struct {
	Journey *journey.Config `yaml:"journey"`
	Needs   *needs.Config   `yaml:"needs"`
	Rules   []bizmap.Rule   `yaml:"rules"`
}

func loadMapConfig(path string) (journey.Config, needs.Config, []bizmap.Rule, error) {
	j, n := journey.DefaultConfig(), needs.DefaultConfig()
	if path == "" {
		return j, n, nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return j, n, nil, portrait.Errorf(portrait.EINVALID, "cannot read map file: %v", err)
	}
	mc := mapConfig{Journey: &j, Needs: &n}
	if err := yaml.Unmarshal(b, &mc); err != nil {
		return j, n, nil, portrait.Errorf(portrait.EINVALID, "map file %s: %v", path, err)
	}
	return j, n, mc.Rules, nil
}

// mapEnrichers builds the service-path and needs enrichers; they run after
// the traits enricher and before the tags (a tag may read a need).
func (a *App) mapEnrichers() ([]profile.Enricher, error) {
	j, n, _, err := loadMapConfig(a.Config.MapFile)
	if err != nil {
		return nil, err
	}
	jen, err := journey.New(j)
	if err != nil {
		return nil, err
	}
	nen, err := needs.New(n)
	if err != nil {
		return nil, err
	}
	return []profile.Enricher{jen, nen}, nil
}

// wireMap serves the customer business map over the segment index.
func (a *App) wireMap() error {
	if a.HTTP.Segments == nil {
		return nil
	}
	j, n, rules, err := loadMapConfig(a.Config.MapFile)
	if err != nil {
		return err
	}
	m, err := bizmap.New(a.HTTP.Segments.Index, a.HTTP.Segments, j, n, rules)
	if err != nil {
		return err
	}
	a.HTTP.Map = m
	return nil
}
