package server

import "github.com/cairnd/cairn/cluster/rpc"

// rpcLimits are the server port's limits: the defaults, with Consul's
// rpc_max_conns_per_client from the config (0 there means unlimited).
func rpcLimits(cfg Config) rpc.Limits {
	lim := rpc.DefaultLimits()
	lim.MaxConnsPerClient = cfg.RPCMaxConnsPerClient
	if lim.MaxConnsPerClient == 0 {
		lim.MaxConnsPerClient = rpc.NoLimit
	}
	return lim
}
