package config

import (
	"reflect"
	"sort"
)

// ignoredKeys lists the Consul configuration keys that Cairn accepts and
// ignores, block by block (the Go type of the block they appear in), so
// that an existing Consul config starts an agent. Each one found in a file
// logs one warning naming the file, line and key. Any other unknown key is
// an error.
//
// To implement one of these keys, add the field to its struct: a real
// field always wins over this list, and TestIgnoredKeysAreNotFields then
// asks for the entry to be removed. To accept and ignore the keys of a new
// block (say acl), add entries under that block's type.
func ignoredKeys() map[reflect.Type][]string {
	return map[reflect.Type][]string{
		reflect.TypeFor[Config](): {
			"addresses", "advertise_addr_ipv4", "advertise_addr_ipv6",
			"audit", "auto_config", "auto_encrypt", "auto_reload_config",
			"check_output_max_size", "check_update_interval",
			"config_entries", "connect", "default_query_time", "disable_anonymous_signature",
			"disable_coordinates", "disable_keyring_file", "disable_update_check",
			"enable_agent_tls_for_checks", "enable_central_service_config",
			"enable_debug", "enable_script_checks", "enable_syslog",
			"encrypt_verify_incoming", "encrypt_verify_outgoing",
			"experiments", "gossip_lan", "gossip_wan", "http_config",
			"leave_on_terminate", "license_path", "log_file",
			"log_rotate_bytes", "log_rotate_duration", "log_rotate_max_files",
			"max_query_time", "peering", "performance", "pid_file", "primary_datacenter",
			"protocol", "raft_boltdb", "raft_logstore", "raft_protocol",
			"raft_snapshot_interval", "raft_snapshot_threshold",
			"raft_trailing_logs", "rejoin_after_leave", "reporting",
			"retry_interval", "retry_interval_wan", "retry_max",
			"retry_max_wan", "rpc", "segment", "serf_lan", "serf_lan_allowed_cidrs",
			"serf_wan", "serf_wan_allowed_cidrs", "server_name",
			"skip_leave_on_interrupt", "start_join", "start_join_wan",
			"syslog_facility", "telemetry", "ui_dir", "unix_sockets",
			"watches",
		},
		reflect.TypeFor[Ports](): {
			"grpc", "grpc_tls", "sidecar_min_port", "sidecar_max_port",
			"expose_min_port", "expose_max_port",
		},
		reflect.TypeFor[DNSConfig](): {
			"cache_max_age", "enable_additional_node_meta_txt", "prefer_namespace",
			"recursor_strategy", "use_cache",
		},
		reflect.TypeFor[Limits](): {
			"https_handshake_timeout", "kv_max_value_size",
			"rpc_client_timeout", "rpc_handshake_timeout", "rpc_max_burst",
			"rpc_rate", "txn_max_req_len",
		},
		reflect.TypeFor[TLS](): {"grpc"},
		reflect.TypeFor[TLSDefaults](): {
			"tls_cipher_suites", "tls_min_version",
		},
		reflect.TypeFor[TLSInternalRPC](): {
			"tls_cipher_suites", "tls_min_version",
		},
		reflect.TypeFor[LegacyTLS](): {
			"tls_cipher_suites", "tls_min_version", "tls_prefer_server_cipher_suites",
		},
		reflect.TypeFor[UIConfig](): {
			"content_path", "dashboard_url_templates", "dir", "metrics_provider",
			"metrics_provider_files", "metrics_provider_options_json",
			"metrics_proxy",
		},
		reflect.TypeFor[ServiceDefinition](): {
			"connect", "locality", "namespace",
			"partition", "proxy", "socket_path", "tagged_addresses", "token",
		},
		reflect.TypeFor[CheckDefinition](): {
			"body", "disable_redirects", "failures_before_critical",
			"failures_before_warning", "namespace", "output_max_size",
			"partition", "success_before_passing", "tls_server_name", "token",
		},
		reflect.TypeFor[Autopilot](): {
			"disable_upgrade_migration", "redundancy_zone_tag",
			"upgrade_version_tag",
		},
	}
}

// ignoreSet is ignoredKeys indexed by normalised key.
type ignoreSet map[reflect.Type]map[string]bool

func newIgnoreSet() ignoreSet {
	s := ignoreSet{}
	for t, keys := range ignoredKeys() {
		m := make(map[string]bool, len(keys))
		for _, k := range keys {
			m[normalizeKey(k)] = true
		}
		s[t] = m
	}
	return s
}

// blockType is the type whose ignore list applies to the keys of t. A
// file's top level is a Config (plus "service" and "check"), and the
// legacy TLS keys are promoted into it.
func (s ignoreSet) has(t reflect.Type, key string) bool {
	n := normalizeKey(key)
	if t == reflect.TypeFor[fileConfig]() {
		return s[reflect.TypeFor[Config]()][n] || s[reflect.TypeFor[LegacyTLS]()][n]
	}
	return s[t][n]
}

// strip removes from the decoded document v (directed by its Go type t)
// the keys of the ignore list that are not fields, calling ignored with
// each one's path, in key order.
func (s ignoreSet) strip(v any, t reflect.Type, path string, ignored func(path string)) {
	t = deref(t)
	if t == nil {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		fields, err := fieldsOf(t)
		if err != nil {
			return
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := joinPath(path, k)
			if idx, ok := fields[normalizeKey(k)]; ok {
				s.strip(obj[k], t.FieldByIndex(idx).Type, p, ignored)
				continue
			}
			if s.has(t, k) {
				delete(obj, k)
				ignored(p)
			}
		}
	case reflect.Slice:
		if arr, ok := v.([]any); ok {
			for i, el := range arr {
				s.strip(el, t.Elem(), indexPath(path, i), ignored)
			}
		}
	case reflect.Map:
		if obj, ok := v.(map[string]any); ok {
			for k, el := range obj {
				s.strip(el, t.Elem(), joinPath(path, k), ignored)
			}
		}
	}
}
