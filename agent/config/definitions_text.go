package config

import "github.com/cairnd/cairn/cluster/structs"

// validateText applies the catalog's text rules (structs.ValidateName and
// friends: no control characters, valid UTF-8, length caps) to the names
// a definition will be registered under, so a definition the servers
// would refuse is refused here, by the config file or HTTP request that
// carries it, instead of failing every anti-entropy sync.
func (s *ServiceDefinition) validateText() error {
	for _, f := range []struct{ field, val string }{
		{"id", s.ID}, {"name", s.Name}, {"address", s.Address},
	} {
		if err := structs.ValidateName(f.field, f.val); err != nil {
			return err
		}
	}
	if err := structs.ValidateTags("tags", s.Tags); err != nil {
		return err
	}
	for k := range s.Meta {
		if err := structs.ValidateText("meta key", k, structs.MetaKeyMaxLength); err != nil {
			return err
		}
	}
	return nil
}

func (c *CheckDefinition) validateText() error {
	for _, f := range []struct{ field, val string }{
		{"id", c.ID}, {"name", c.Name}, {"service_id", c.ServiceID},
	} {
		if err := structs.ValidateName(f.field, f.val); err != nil {
			return err
		}
	}
	return nil
}
