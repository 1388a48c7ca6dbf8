package importer

// MappingView is a mapping as people read it: which field each column
// became and how its values were cleaned.
type MappingView struct {
	Mode string `json:"mode"`
	// Inferred is true when no mapping was given and the columns were
	// read by their names (InferMapping).
	Inferred bool         `json:"inferred"`
	Columns  []ColumnView `json:"columns"`
}

// ColumnView is one column of a MappingView. Field names the place in the
// event the column fills: userId, anonymousId, timestamp, event,
// traits.<name>, properties.<name>, externalIds.<type>.
type ColumnView struct {
	Column string `json:"column"`
	Field  string `json:"field"`
	Kind   string `json:"kind,omitempty"`
}

// View describes the mapping column by column, in the order the mapping
// names them. Template identities ("crm-{id}") list each column they use.
func (m *Mapping) View() *MappingView {
	if m == nil {
		return nil
	}
	v := &MappingView{Mode: m.Mode, Inferred: m.inferred, Columns: []ColumnView{}}
	add := func(column, field, kind string) {
		if column != "" {
			v.Columns = append(v.Columns, ColumnView{Column: column, Field: field, Kind: kind})
		}
	}
	identity := func(spec, field string) {
		vars := templateVar.FindAllStringSubmatch(spec, -1)
		if len(vars) == 0 {
			add(spec, field, "")
			return
		}
		for _, x := range vars {
			add(x[1], field, "")
		}
	}
	identity(m.Identity.UserID, "userId")
	identity(m.Identity.AnonymousID, "anonymousId")
	for _, id := range m.Identity.Identifiers {
		add(id.Column, "externalIds."+id.Type, id.Kind)
	}
	add(m.Timestamp.Column, "timestamp", "")
	add(m.Event.Column, "event", "")
	for _, c := range m.Columns {
		switch {
		case c.Property != "":
			add(c.Column, "properties."+c.Property, c.Kind)
		case c.Trait != "":
			add(c.Column, "traits."+c.Trait, c.Kind)
		}
	}
	return v
}
