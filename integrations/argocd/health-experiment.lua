-- Argo CD health check for argoproj.io/Experiment.
--
-- The verdicts of Argo CD's built-in Experiment check, from status.phase:
--   no status yet          Progressing "Waiting for experiment to finish: status has not been reconciled."
--   Pending / Running      Progressing "Experiment is pending" / "Experiment is running"
--   Successful             Healthy     "Experiment is successful"
--   Failed / Error         Degraded    "Experiment has failed" / "Experiment had an error"
-- A status with another phase (or none yet) gives no verdict: Argo CD then shows Unknown.
-- Written for Lua 5.1 (Argo CD's interpreter) and later.

local VERDICTS = {
  Pending = {status = "Progressing", message = "Experiment is pending"},
  Running = {status = "Progressing", message = "Experiment is running"},
  Successful = {status = "Healthy", message = "Experiment is successful"},
  Failed = {status = "Degraded", message = "Experiment has failed"},
  Error = {status = "Degraded", message = "Experiment had an error"},
}

local function health(experiment)
  local status = experiment.status
  if status == nil then
    return {status = "Progressing", message = "Waiting for experiment to finish: status has not been reconciled."}
  end
  local found = VERDICTS[status.phase]
  if found == nil then
    return {}
  end
  return {status = found.status, message = found.message}
end

return health(obj)
