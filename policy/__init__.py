"""Sync policy: org defaults with locks, per-member overrides, and the resolver.

- `registry.SETTINGS` lists every setting once (label, help, kinds, type,
  bounds, default per kind); models, validation, resolver, pages and tests are
  generated from it.
- `selectors.policy_effective_for(membership, kind, overrides=None)` (and
  `policy_effective_for_many` for the scheduler) is the only way the engine
  reads policy: every value with its source (`org`, `locked`, `user`).
  `overrides` are proposed raw values (a dry run of a settings change),
  validated exactly as a save would be; nothing is written.
- `extensions`: apps above policy register advisors that comment on a change
  (blocking advice stops a member's save until confirmed).
- Dependency direction: syncengine → policy → orgs. This app lives apart from
  `orgs` (DESIGN.md §4 placed it there) so it can evolve without touching the
  tenancy code.
- The member's time zone is `accounts.User.time_zone`, not a policy field: it
  belongs to the person (the same in every org and for every kind), the request
  middleware already activates it for display, and a per-kind copy could
  disagree with it. The resolver copies it into `EffectivePolicy.time_zone`,
  so the sync window is evaluated in the zone the member sees on every page.
"""
