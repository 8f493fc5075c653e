// Package acl is Consul's ACL rule language and the Authorizer built from
// it. It owns parsing policy rules (HCL or JSON, with
// github.com/hashicorp/hcl v1, the parser Consul uses) and answering "may
// this token do X to Y"; it does not own where tokens and policies live
// (cluster/state) or who asks (cluster/server, agent/http).
//
// Decisions the issue left open:
//   - Resources: service, node, key, agent, event, session, query (each with
//     its _prefix form), operator, keyring and acl. Levels: deny, read,
//     list, write; list implies read and only matters for key_prefix
//     (cairn does not refuse ?keys/?recurse without list, as Consul with
//     acl.enable_key_list_policy off).
//   - Matching: an exact rule beats every prefix rule; among prefix rules the
//     longest wins; no rule → the default policy (allow = write, deny).
//   - A token with several policies: for the same rule name the levels merge
//     with deny first, then write, list, read (Consul's precedence).
//   - The global-management policy is not rules: it makes the Authorizer a
//     management one (everything allowed, ACL administration included).
//   - KeyWritePrefix (recursive delete) needs write on the prefix and no
//     rule below it granting less, as Consul.
//   - ContextWithToken carries a request's secret from the HTTP layer through
//     the agent to the RPC client, which sends it in the request header.
package acl
