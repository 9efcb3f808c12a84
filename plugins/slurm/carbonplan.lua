-- carbonplan.lua: carbon-aware planning for Slurm jobs that opt in, called from job_submit.lua.
--
-- For a job that opts in (a QOS, a partition or a word in --comment; see `defaults`), it
--   1. requires a time limit (carbonplan fits the job before its --deadline with it),
--   2. appends the tag "[carbonplan:tagged ...]" to the job's admin_comment (the carbonplan daemon
--      finds tagged jobs with `squeue --json` and later replaces the tag with its decision),
--   3. fail-open (default): sets a provisional begin time a few minutes out, so the job runs on
--      its own if carbonplan never decides; fail-closed: holds the job (priority 0) until
--      carbonplan releases it.
-- Jobs that do not opt in are not touched. The body runs under pcall: on any error the job goes
-- through unchanged and slurmctld.log gets a line with the marker "carbonplan:". The module does
-- no shell, network or file I/O per job; it is read once, when slurmctld loads job_submit.lua.
--
-- luacheck: globals slurm

local M = { version = "1" }

local defaults = {
   opt_in_qos = "carbon",          -- jobs submitted with --qos=<this> opt in (false: off)
   opt_in_partitions = {},         -- jobs submitted to one of these partitions opt in
   opt_in_comment = "carbonplan",  -- jobs whose --comment has this word opt in (false: off)
   mode = "open",                  -- "open": provisional begin time; "closed": hold
   provisional_delay_s = 300,      -- fail-open: seconds carbonplan has to decide
}

local settings = {}
local enabled = true

local function log_error(fmt, ...)
   slurm.log_error("carbonplan: " .. fmt, ...)
end

local function copy(t)
   local out = {}
   for k, v in pairs(t) do
      out[k] = type(v) == "table" and copy(v) or v
   end
   return out
end

local function check_settings(s)
   for k in pairs(s) do
      if defaults[k] == nil then
         return "unknown setting '" .. tostring(k) .. "'"
      end
   end
   if s.mode ~= "open" and s.mode ~= "closed" then
      return "mode must be \"open\" or \"closed\", got " .. tostring(s.mode)
   end
   if type(s.provisional_delay_s) ~= "number" or s.provisional_delay_s < 0 then
      return "provisional_delay_s must be a number >= 0"
   end
   if type(s.opt_in_partitions) ~= "table" then
      return "opt_in_partitions must be a list of partition names"
   end
   for _, key in ipairs({ "opt_in_qos", "opt_in_comment" }) do
      local v = s[key]
      if v ~= false and (type(v) ~= "string" or v == "") then
         return key .. " must be a non-empty string or false"
      end
   end
   return nil
end

--- Merge site settings over the defaults. Never raises: invalid settings disable the module
--- (every job then goes through untouched) and say why in slurmctld.log.
function M.configure(site)
   local ok, err = pcall(function()
      local s = copy(defaults)
      for k, v in pairs(site or {}) do
         s[k] = v
      end
      local problem = check_settings(s)
      if problem then
         error(problem, 0)
      end
      settings = s
      enabled = true
   end)
   if not ok then
      enabled = false
      log_error("settings rejected, module disabled (jobs pass untouched): %s", tostring(err))
   end
   return M
end

-- Lua patterns treat these as magic; site words are matched literally.
local function literal(word)
   return (word:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local function has_word(text, word)
   if type(text) ~= "string" or not word then
      return false
   end
   return text:find("%f[%w_]" .. literal(word) .. "%f[^%w_]") ~= nil
end

local function in_list(csv, names)
   if type(csv) ~= "string" then
      return nil
   end
   for part in csv:gmatch("[^,]+") do
      for _, name in ipairs(names) do
         if part == name then
            return name
         end
      end
   end
   return nil
end

--- How the job opted in ("qos", "partition", "comment"), or nil.
local function opted_in(job_desc)
   if settings.opt_in_qos and job_desc.qos == settings.opt_in_qos then
      return "qos"
   end
   if in_list(job_desc.partition, settings.opt_in_partitions) then
      return "partition"
   end
   if has_word(job_desc.comment, settings.opt_in_comment) then
      return "comment"
   end
   return nil
end

local function unset_number(v)
   return v == nil or v == slurm.NO_VAL or v == slurm.INFINITE
end

local function tag(job_desc, via, user_begin)
   local t = "[carbonplan:tagged via=" .. via .. " mode=" .. settings.mode
   if user_begin then
      t = t .. " not_before=" .. string.format("%d", user_begin)
   end
   t = t .. "]"
   local old = job_desc.admin_comment
   if type(old) == "string" and old ~= "" then
      if old:find("[carbonplan:", 1, true) then
         return  -- already tagged (a requeue or a resubmission): keep it
      end
      job_desc.admin_comment = old .. " " .. t
   else
      job_desc.admin_comment = t
   end
end

local function handle(job_desc, submit_uid)
   local via = opted_in(job_desc)
   if not via then
      return slurm.SUCCESS
   end
   if unset_number(job_desc.time_limit) then
      slurm.log_user("carbonplan: jobs that opt in to carbon-aware planning (via %s) need a " ..
         "time limit: add --time (e.g. --time=02:00:00) so carbonplan can fit the job " ..
         "before its --deadline", via)
      slurm.log_info("carbonplan: rejected a job of uid %s without a time limit (via %s)",
         tostring(submit_uid), via)
      return slurm.ESLURM_MISSING_TIME_LIMIT
   end
   local begin = job_desc.begin_time
   local user_begin = nil
   if not unset_number(begin) and begin > 0 then
      user_begin = begin
   end
   tag(job_desc, via, user_begin)
   if settings.mode == "closed" then
      job_desc.priority = 0
   else
      local provisional = os.time() + settings.provisional_delay_s
      if user_begin == nil or user_begin < provisional then
         job_desc.begin_time = provisional
      end
   end
   slurm.log_info("carbonplan: tagged job '%s' of uid %s (via %s, mode %s)",
      tostring(job_desc.name), tostring(submit_uid), via, settings.mode)
   return slurm.SUCCESS
end

--- Entry point for slurm_job_submit. Never raises; errors let the job through unchanged.
function M.job_submit(job_desc, part_list, submit_uid) -- luacheck: no unused args
   if not enabled then
      return slurm.SUCCESS
   end
   local ok, rc = pcall(handle, job_desc, submit_uid)
   if not ok then
      log_error("error, job of uid %s let through unchanged: %s", tostring(submit_uid),
         tostring(rc))
      return slurm.SUCCESS
   end
   return rc
end

--- Entry point for slurm_job_modify: carbonplan's own `scontrol update` calls pass here.
function M.job_modify(job_desc, job_rec, part_list, modify_uid) -- luacheck: no unused args
   return slurm.SUCCESS
end

M.configure({})
return M
