package local

import (
	"fmt"

	"github.com/cairnd/cairn/cluster/structs"
)

// Maintenance mode, as Consul's: a critical check that takes the node or a
// service out of DNS and health queries until removed. IDs, names and
// default notes match Consul's so tooling that looks for them keeps working.
const (
	NodeMaintCheckID      = "_node_maintenance"
	NodeMaintCheckName    = "Node Maintenance Mode"
	ServiceMaintPrefix    = "_service_maintenance:"
	ServiceMaintCheckName = "Service Maintenance Mode"
	// MaintCheckType is the Type maintenance checks carry.
	MaintCheckType = "maintenance"

	DefaultNodeMaintReason    = "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
	DefaultServiceMaintReason = "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
)

// ServiceMaintCheckID is the maintenance check's ID for a service.
func ServiceMaintCheckID(serviceID string) string { return ServiceMaintPrefix + serviceID }

// EnableServiceMaintenance puts a service in maintenance. Enabling it twice
// keeps the first reason, as Consul does.
func (s *State) EnableServiceMaintenance(serviceID, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.services[serviceID]
	if ss == nil || ss.deleted {
		return fmt.Errorf("%w %q", ErrUnknownService, serviceID)
	}
	id := ServiceMaintCheckID(serviceID)
	if cs := s.checks[id]; cs != nil && !cs.deleted {
		return nil
	}
	if reason == "" {
		reason = DefaultServiceMaintReason
	}
	s.addCheckLocked(&structs.HealthCheck{
		CheckID:   id,
		Name:      ServiceMaintCheckName,
		Notes:     reason,
		ServiceID: serviceID,
		Status:    structs.HealthCritical,
		Type:      MaintCheckType,
	})
	return nil
}

// DisableServiceMaintenance takes a service out of maintenance; a service
// not in maintenance is left as is.
func (s *State) DisableServiceMaintenance(serviceID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.services[serviceID]
	if ss == nil || ss.deleted {
		return fmt.Errorf("%w %q", ErrUnknownService, serviceID)
	}
	if cs := s.checks[ServiceMaintCheckID(serviceID)]; cs != nil && !cs.deleted {
		cs.deleted, cs.inSync, cs.rev = true, false, s.changedLocked()
	}
	return nil
}

// EnableNodeMaintenance puts the whole node in maintenance.
func (s *State) EnableNodeMaintenance(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.checks[NodeMaintCheckID]; cs != nil && !cs.deleted {
		return
	}
	if reason == "" {
		reason = DefaultNodeMaintReason
	}
	s.addCheckLocked(&structs.HealthCheck{
		CheckID: NodeMaintCheckID,
		Name:    NodeMaintCheckName,
		Notes:   reason,
		Status:  structs.HealthCritical,
		Type:    MaintCheckType,
	})
}

// DisableNodeMaintenance takes the node out of maintenance.
func (s *State) DisableNodeMaintenance() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.checks[NodeMaintCheckID]; cs != nil && !cs.deleted {
		cs.deleted, cs.inSync, cs.rev = true, false, s.changedLocked()
	}
}

// InMaintenance reports whether a service ("" = the node) is in maintenance.
func (s *State) InMaintenance(serviceID string) bool {
	id := NodeMaintCheckID
	if serviceID != "" {
		id = ServiceMaintCheckID(serviceID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.checks[id]
	return cs != nil && !cs.deleted
}
