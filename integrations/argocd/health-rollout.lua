-- Argo CD health check for argoproj.io/Rollout, as this controller's Rollouts report it.
--
-- Argo CD runs this with the live Rollout as the global `obj` and shows the returned
-- {status, message}. The verdicts are those of Argo CD's built-in Rollout check; the
-- rules, first match wins:
--  1. Spec not yet observed: Progressing "Waiting for rollout spec update to be observed"
--     while there is no status, or a numeric status.observedGeneration differs from
--     metadata.generation (a hash, as v0.9 wrote, or a number above the generation counts
--     as observed), or a workloadRef Rollout's annotation
--     rollout.argoproj.io/workload-generation differs from status.workloadObservedGeneration.
--  2. status.phase set (v1.0 and later, and this controller): that phase with
--     status.message, Paused shown as Suspended. Healthy, Progressing, Paused (an indefinite
--     or timed pause, a blueGreen pause before promotion, an inconclusive analysis) and
--     Degraded (aborted, InvalidSpec, progress deadline exceeded) all arrive this way.
--  3. Without a phase (before v1.0) the status is read field by field:
--     a. an InvalidSpec condition, or a Progressing condition with reason RolloutAborted or
--        ProgressDeadlineExceeded: Degraded with the condition's message;
--     b. status.pauseConditions not empty, or spec.paused: Suspended "Rollout is paused";
--     c. no status.currentPodHash: Progressing (not reconciled yet);
--     d. fewer updated replicas than spec.replicas (default 1), or fewer available than
--        updated: Progressing;
--     e. blueGreen: Progressing until status.blueGreen.activeSelector is the current pod
--        hash, and while a stableRS is set that is not the current pod hash (analysis);
--        canary: Progressing while old replicas remain (status.replicas > updatedReplicas)
--        or the stableRS (status.stableRS, before v0.8 status.canary.stableRS) is not the
--        current pod hash;
--     f. otherwise Healthy.
-- Written for Lua 5.1 (Argo CD's interpreter) and later: nothing here needs table.getn.

local function number_or(value, default)
  if value == nil then
    return default
  end
  return tonumber(value) or default
end

local function spec_of(rollout)
  return rollout.spec or {}
end

local function verdict(status, message)
  return {status = status, message = message or ""}
end

local function generation_observed(rollout)
  local status = rollout.status
  if status == nil then
    return false
  end
  local observed = tonumber(status.observedGeneration)
  local generation = tonumber((rollout.metadata or {}).generation)
  if observed == nil or generation == nil or observed > generation then
    return true -- v0.9 wrote a hash here; there is nothing to compare
  end
  return observed == generation
end

local function workload_generation_observed(rollout)
  local annotations = (rollout.metadata or {}).annotations
  if spec_of(rollout).workloadRef == nil or annotations == nil then
    return true
  end
  local wanted = tonumber(annotations["rollout.argoproj.io/workload-generation"])
  return wanted == tonumber(rollout.status.workloadObservedGeneration)
end

local function degraded_condition(status)
  for _, condition in ipairs(status.conditions or {}) do
    if condition.type == "InvalidSpec" then
      return verdict("Degraded", condition.message)
    end
    if condition.type == "Progressing"
        and (condition.reason == "RolloutAborted" or condition.reason == "ProgressDeadlineExceeded") then
      return verdict("Degraded", condition.message)
    end
  end
  return nil
end

local function paused(rollout)
  local conditions = rollout.status.pauseConditions
  if (conditions ~= nil and #conditions > 0) or spec_of(rollout).paused == true then
    return verdict("Suspended", "Rollout is paused")
  end
  return nil
end

local function replicas_progressing(rollout)
  local status = rollout.status
  local updated = number_or(status.updatedReplicas, 0)
  if updated < number_or(spec_of(rollout).replicas, 1) then
    return verdict("Progressing", "Waiting for roll out to finish: More replicas need to be updated")
  end
  if number_or(status.availableReplicas, 0) < updated then
    return verdict("Progressing", "Waiting for roll out to finish: updated replicas are still becoming available")
  end
  return nil
end

local function stable_rs(status)
  if status.stableRS ~= nil then
    return status.stableRS
  end
  if status.canary ~= nil and status.canary.stableRS ~= nil then
    return status.canary.stableRS
  end
  return ""
end

local function strategy_progressing(rollout)
  local status, strategy = rollout.status, spec_of(rollout).strategy or {}
  local current, stable = status.currentPodHash, stable_rs(status)
  if strategy.blueGreen ~= nil then
    if status.blueGreen == nil or status.blueGreen.activeSelector ~= current then
      return verdict("Progressing", "active service cutover pending")
    end
    if stable ~= "" and stable ~= current then
      return verdict("Progressing", "waiting for analysis to complete")
    end
  elseif strategy.canary ~= nil then
    if number_or(status.replicas, 0) > number_or(status.updatedReplicas, 0) then
      return verdict("Progressing", "Waiting for roll out to finish: old replicas are pending termination")
    end
    if stable == "" or stable ~= current then
      return verdict("Progressing", "Waiting for rollout to finish steps")
    end
  end
  return nil
end

local function legacy_health(rollout)
  local found = degraded_condition(rollout.status) or paused(rollout)
  if found ~= nil then
    return found
  end
  if rollout.status.currentPodHash == nil then
    return verdict("Progressing", "Waiting for rollout to finish: status has not been reconciled.")
  end
  return replicas_progressing(rollout) or strategy_progressing(rollout) or verdict("Healthy", "")
end

local function health(rollout)
  if not generation_observed(rollout) or not workload_generation_observed(rollout) then
    return verdict("Progressing", "Waiting for rollout spec update to be observed")
  end
  local phase = rollout.status.phase
  if phase ~= nil then
    if phase == "Paused" then
      phase = "Suspended"
    end
    return verdict(phase, rollout.status.message)
  end
  return legacy_health(rollout)
end

return health(obj)
