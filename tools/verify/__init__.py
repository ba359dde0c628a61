"""make verify: one command that tells an operator whether a deployed stack works, read-only.

The checks (tools.verify.checks) are the same for a stack on AWS and for the local stack of
`make serve`; only where their facts come from differs (tools.verify.aws, tools.verify.local).
None of them reads a secret's value: secrets are seen through DescribeSecret and
ListSecretVersionIds only, and a minted token is looked at, never printed.
"""
