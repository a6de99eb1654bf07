--[[
  A stand-in for darktable's Lua API that loads plugins/darktable/moodindex.lua, runs its
  actions on real files, and reports what happened.  Commands really run through /bin/sh
  (os.execute), so a quoting mistake would really execute the injected command.

  lua5.4 harness.lua PLUGIN FAKE_MOODINDEX NAMES_FILE MODE QUERY
    NAMES_FILE  NUL-separated absolute image paths
    MODE        "lua-scripts" (stub lib/dtutils* present) or "plain" (built-in fallbacks)
  Prints one NUL-terminated record per event:  TAG <path> <tag> | DETACH ... | SELECTED <path> | JOB ... | RESULT ...
  and exits 1 if an internal check fails.
]]

local plugin, fake, names_file, mode, query = arg[1], arg[2], arg[3], arg[4], arg[5]

local function emit(...)
  io.write(table.concat({ ... }, "\t"), "\0") -- NUL-terminated: paths may hold newlines
end

local function check(cond, msg)
  if not cond then
    io.stderr:write("CHECK FAILED: ", msg, "\n")
    os.exit(1)
  end
end

-- images -------------------------------------------------------------------------------------
local f = assert(io.open(names_file, "rb"))
local images = {}
for path in f:read("a"):gmatch("([^%z]+)") do
  local dir, name = path:match("^(.*)/([^/]*)$")
  images[#images + 1] = { path = dir, filename = name, tags = {} }
end
f:close()

-- the darktable stub --------------------------------------------------------------------------
local prefs = { ["moodindex/executable"] = fake, ["moodindex/min_score"] = 0.5, ["moodindex/prefix"] = "Emotion" }
local registered = {}
local tags = {}
local jobs = {}
local dt = {
  configuration = { api_version_major = 9, api_version_minor = 0, api_version_string = "9.0.0",
                    has_gui = true, running_os = "linux", config_dir = "/nonexistent" },
  preferences = {
    register = function(modname, name, kind, label, tooltip, default)
      registered[#registered + 1] = modname .. "/" .. name .. ":" .. kind
    end,
    read = function(modname, name, kind) return prefs[modname .. "/" .. name] end,
    write = function(modname, name, kind, value) prefs[modname .. "/" .. name] = value end,
  },
  print = function(msg) emit("PRINT", msg) end,
  print_log = function(msg) end,
  print_error = function(msg) emit("ERROR", msg) end,
  control = {
    execute = function(cmd)
      local ok, how, code = os.execute(cmd)
      if ok == true then return 0 end
      return code
    end,
  },
  tags = {
    create = function(name)
      tags[name] = tags[name] or { name = name }
      return tags[name]
    end,
    find = function(name) return tags[name] end,
    attach = function(tag, image)
      image.tags[tag.name] = true
      emit("TAG", image.path .. "/" .. image.filename, tag.name)
    end,
    detach = function(tag, image)
      if image.tags[tag.name] then emit("DETACH", image.path .. "/" .. image.filename, tag.name) end
      image.tags[tag.name] = nil
    end,
  },
  gui = {
    views = { lighttable = "lighttable" },
    libs = { image = {
      register_action = function(name, label, cb, tooltip) registered[#registered + 1] = "action:" .. name
        registered.action_cb = cb end,
      destroy_action = function(name) registered.destroyed = name end,
    } },
    action_images = images,
    create_job = function(text, cancellable, cb)
      local job = { text = text, percent = 0, valid = true }
      jobs[#jobs + 1] = job
      return job
    end,
    selection = function(list)
      for _, image in ipairs(list) do emit("SELECTED", image.path .. "/" .. image.filename) end
    end,
  },
  new_widget = function(kind) return function(t) t.kind = kind; return t end end,
  register_lib = function(name) registered[#registered + 1] = "lib:" .. name end,
  database = images,
}
package.preload["darktable"] = function() return dt end

local quoted_by_helper = 0
if mode == "lua-scripts" then
  -- minimal stand-ins with lua-scripts' documented behaviour (not its code)
  package.preload["lib/dtutils"] = function()
    return { check_min_api_version = function(v, name) emit("APICHECK", v, name) end }
  end
  package.preload["lib/dtutils.file"] = function()
    return { sanitize_filename = function(s)
      quoted_by_helper = quoted_by_helper + 1
      return "'" .. (s:gsub("'", "'\\''")) .. "'"
    end }
  end
  package.preload["lib/dtutils.system"] = function()
    return { external_command = function(cmd) return dt.control.execute(cmd) end }
  end
end

-- load the plugin -----------------------------------------------------------------------------
local script_data = dofile(plugin)
check(type(script_data) == "table" and script_data.metadata and script_data.metadata.name == "moodindex",
  "script_data.metadata")
check(type(script_data.destroy) == "function" and type(script_data.restart) == "function", "destroy/restart")
local want = { "moodindex/executable:file", "moodindex/min_score:float", "moodindex/prefix:string",
  "action:moodindex_detect", "lib:moodindex" }
for _, w in ipairs(want) do
  local found = false
  for _, r in ipairs(registered) do found = found or r == w end
  check(found, "registered " .. w)
end

-- JSON decoder sanity
local api = script_data.api
local j = api.json.decode('[{"a": "x\\"y\\u00e9\\ud83d\\ude00", "n": -1.5e2, "t": true, "z": null, "l": []}]')
check(j[1].a == 'x"y\u{e9}\u{1F600}' and j[1].n == -150 and j[1].t == true and j[1].z == nil, "json")
check(not pcall(api.json.decode, '[1, 2'), "json rejects truncated input")

-- detect through the registered action (as darktable calls it) --------------------------------
registered.action_cb("clicked", images)
check(#jobs >= 1 and jobs[1].valid == false and jobs[1].percent == 1, "progress job finished")
for _, image in ipairs(images) do
  check(image.tags["Emotion|Happy"], "Emotion|Happy on " .. image.filename)
  check(not image.tags["Emotion|Sad"], "no low-score tag on " .. image.filename)
end
if mode == "lua-scripts" then check(quoted_by_helper > #images, "paths quoted by df.sanitize_filename") end

-- re-detect with a lower threshold: sad appears, happy stays, nothing duplicated
prefs["moodindex/min_score"] = 0.25
local tagged, failed = api.detect(images)
check(tagged == #images and failed == 0, "second run tagged all")
for _, image in ipairs(images) do check(image.tags["Emotion|Sad"], "Emotion|Sad after lowering the threshold") end

-- select matching ---------------------------------------------------------------------------
local selected = api.select_matching(query)
emit("RESULT", "selected", tostring(#selected))

script_data.destroy()
check(registered.destroyed == "moodindex_detect", "destroy removes the action")
emit("RESULT", "ok")
