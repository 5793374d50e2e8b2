# The orchestrator's authorization policy (package `orchestrator`).
#
# Input (the shape orchestrator-python sends to OPA, so INFN policies keep working):
#   {"user_info": {<token claims merged with userinfo, "iss" = trusted issuer>},
#    "path": "/api/v1/...", "method": "GET", "has_body": false}
# Data (built from TRUSTED_IDP_LIST and ADMIN_GROUPS unless POLICY_DATA_FILE is set):
#   {"trusted_issuers": [{"endpoint": <issuer>, "claim": <group claim>}],
#    "admin_entitlements": [<group>], "user_endpoints": [{"path": <glob>, "method": <verb or "*">}]}
#
# Decisions read by the orchestrator: `allow` and `is_admin`. Finer rules (owners see
# their deployments, admin-only operations) are enforced by the service itself.
package orchestrator

import rego.v1

default allow := false

default is_admin := false

default is_user := false

trusted_issuer := issuer if {
	some issuer in data.trusted_issuers
	trim_right(issuer.endpoint, "/") == trim_right(input.user_info.iss, "/")
}

claim := trusted_issuer.claim

is_user if trusted_issuer

user_groups contains group if {
	groups := input.user_info[claim]
	is_array(groups)
	some group in groups
	is_string(group)
}

user_groups contains group if {
	group := input.user_info[claim]
	is_string(group)
}

is_admin if {
	is_user
	some group in user_groups
	group in data.admin_entitlements
}

allow if is_admin

allow if {
	is_user
	some endpoint in data.user_endpoints
	method_matches(endpoint.method)
	glob.match(endpoint.path, ["/"], request_path)
}

request_path := trim_right(input.path, "/") if input.path != "/"

request_path := "/" if input.path == "/"

method_matches(method) if method == "*"

method_matches(method) if upper(method) == input.method
