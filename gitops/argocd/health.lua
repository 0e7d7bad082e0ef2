-- Argo CD health of a ProfilePipeline (kith.dev/v1alpha1).
--
-- Install it under the argocd-cm key
-- resource.customizations.health.kith.dev_ProfilePipeline (see
-- argocd-cm.yaml beside this file). Argo CD runs it with `obj`, the
-- object as the API server returns it, and reads the table it returns.
--
-- Healthy when the runners run the spec as written; Progressing while the
-- operator has not seen the latest spec, a rollout is under way or an
-- upgrade waits for its savepoint; Degraded when the pipeline cannot get
-- there on its own (an invalid spec, a stuck rollout, a blocked or
-- rolled-back upgrade, refused parallelism), with the operator's reason
-- and message; Suspended when the spec asks for no runners.
--
-- Written for Lua 5.1, the dialect Argo CD's interpreter speaks.

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function say(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

local health = {}
local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil or
    (generation ~= nil and status.observedGeneration < generation) then
  health.status = "Progressing"
  health.message = "waiting for the operator to see the latest spec"
  return health
end

local stalled = condition(status, "Stalled") or condition(status, "Degraded")
if stalled ~= nil and stalled.status == "True" then
  health.status = "Degraded"
  health.message = say(stalled)
  return health
end

local reconciling = condition(status, "Reconciling") or condition(status, "Progressing")
if reconciling ~= nil and reconciling.status == "True" then
  health.status = "Progressing"
  health.message = say(reconciling)
  return health
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  if status.phase == "Suspended" then
    health.status = "Suspended"
  else
    health.status = "Healthy"
  end
  health.message = say(ready)
  return health
end

health.status = "Progressing"
if ready ~= nil then
  health.message = say(ready)
else
  health.message = "waiting for the operator to report Ready"
end
return health
