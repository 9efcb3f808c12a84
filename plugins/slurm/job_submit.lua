-- job_submit.lua: an example site script for JobSubmitPlugins=lua that runs carbonplan.lua.
-- Put both files next to slurm.conf. A site that has its own job_submit.lua copies the two
-- carbonplan lines (marked below) into it and leaves the rest as it is.
--
-- luacheck: globals slurm slurm_job_submit slurm_job_modify

-- carbonplan (1 of 2): load the module once, next to this script, with the site's settings.
-- If it cannot load (a syntax error after an edit), jobs go through untouched.
local cp_ok, carbonplan = pcall(function()
   local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or ""
   return dofile(dir .. "carbonplan.lua").configure({
      opt_in_qos = "carbon",          -- sbatch --qos=carbon ... opts in
      opt_in_comment = "carbonplan",  -- sbatch --comment=carbonplan ... opts in
      opt_in_partitions = {},         -- e.g. { "gpu-green" }
      mode = "open",                  -- "open": provisional begin time; "closed": hold
      provisional_delay_s = 300,
   })
end)
if not cp_ok then
   slurm.log_error("carbonplan: module not loaded, jobs pass untouched: %s", tostring(carbonplan))
end

function slurm_job_submit(job_desc, part_list, submit_uid)
   -- ... the site's own policies go here ...

   -- carbonplan (2 of 2): last, so that it sees the job as the site's policies left it.
   if cp_ok then return carbonplan.job_submit(job_desc, part_list, submit_uid) end
   return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid) -- luacheck: no unused args
   return slurm.SUCCESS
end

return slurm.SUCCESS
