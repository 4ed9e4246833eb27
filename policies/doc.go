// Package policies owns warden's policy language: TOML files that describe a
// jail once, so that it can be reviewed, shared, inherited and checked.
//
// It parses one file ([Parse]) or looks a policy up by name or path ([Load]),
// resolves the extends chain (cycles rejected), merges the layers (scalars
// override, lists append, maps merge per key, and a top-level
// replace = ["key", ...] drops what the base said for those keys), expands the
// variables ${CWD} ${HOME} ${USER} ${UID} ${GID} ${TMPDIR} ${PROJECT}
// ${POLICY_DIR} and ${env:NAME}, and validates the result, contradictions
// included. Every error is a *[PosError] naming file:line:col, the key, what
// is wrong and what would be right. [Format] prints the resolved policy as
// canonical TOML; its hash identifies what a policy does, not how it is
// written. [Apply] lays command-line flags over a resolved policy as one more
// layer, under the same merge rule. The built-in policies (default, strict,
// build, ci, net) are the *.toml files of this directory, embedded.
//
// This package is pure: it reads policy files (and only those that [Load] is
// asked for, or that an extends names), and nothing else of the host. The
// caller fills [Env] from the real host. It never reads a policy from the
// current directory on its own, because a repository could otherwise loosen
// its own sandbox. It never logs, never exits, and does not know how a policy
// is enforced: sandbox.Resolve translates a *Policy into mounts, maps, seccomp
// and cgroup settings.
package policies
