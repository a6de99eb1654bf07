--[[
  moodindex.lua - emotion tags for darktable, from the moodindex command-line tool

  USAGE
    * `moodindex plugins install darktable` copies this file to ~/.config/darktable/lua/contrib/,
      adds `require "contrib/moodindex"` to ~/.config/darktable/luarc and writes the absolute path
      of the moodindex that installed it below (INSTALLED_MOODINDEX), so a darktable started from
      the desktop finds a moodindex that lives in a venv or pipx.  By hand: copy this file to
      ~/.config/darktable/lua/contrib/ and start it from the script manager, or add
      `require "contrib/moodindex"` to ~/.config/darktable/luarc
    * another moodindex program can be set in preferences > lua options
    * lighttable: select images, then "detect emotions" (selected images module, or the
      moodindex panel); tags "Emotion|Happy" etc. are attached through darktable's tag API
    * type a query ("sad photos from 2019") in the moodindex panel and press "select matching"

  Every file name and the query text reach the shell single-quoted (lua-scripts'
  df.sanitize_filename when lua-scripts is installed, the same POSIX quoting otherwise), so names
  like  a'; touch x; '.jpg  or  $(id).jpg  are data, never commands.

  Works without lua-scripts' lib/dtutils (falls back to built-in helpers) so it also runs from a
  plain luarc.  Tested with a Lua harness standing in for the darktable API
  (plugins/darktable/tests/harness.lua) and in darktable 4.2 (Lua API 9) under Xvfb.
]]

local dt = require "darktable"

local function try_require(name)
  local ok, mod = pcall(require, name)
  if ok then return mod end
  return nil
end

local du = try_require "lib/dtutils"
local df = try_require "lib/dtutils.file"
local dsys = try_require "lib/dtutils.system"

local MODULE = "moodindex"
local MIN_API = "7.0.0" -- dt.control.execute, dt.gui.create_job, image actions

-- gettext: darktable's when it has one, identity otherwise
local gettext = dt.gettext and dt.gettext.gettext or nil
local function _(msgid)
  if gettext then return gettext(msgid) end
  return msgid
end

-- ---------------------------------------------------------------------------------------------
-- API version check (lua-scripts convention, with a fallback that compares majors)
-- ---------------------------------------------------------------------------------------------
if du and du.check_min_api_version then
  du.check_min_api_version(MIN_API, MODULE)
else
  local major = tonumber(tostring(dt.configuration.api_version_major or "0"))
  if major and major < 7 then
    error(MODULE .. ": darktable Lua API " .. MIN_API .. " or newer is needed")
  end
end

-- The moodindex program when the preference is not set: `moodindex plugins install darktable`
-- rewrites this one line with its own absolute path; as shipped, `moodindex` on PATH.
local INSTALLED_MOODINDEX = "moodindex"

local CLASSES = { "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral" }
local BATCH = 40 -- images per moodindex call: progress updates and bounded command lines

-- ---------------------------------------------------------------------------------------------
-- helpers
-- ---------------------------------------------------------------------------------------------

-- POSIX single-quoting: the whole string is one shell word, whatever it contains.
local function shell_quote(s)
  return "'" .. (string.gsub(s, "'", "'\\''")) .. "'"
end

-- file names: lua-scripts' helper when present (it single-quotes the same way on Linux/macOS)
local function quote_path(path)
  if df and df.sanitize_filename then return df.sanitize_filename(path) end
  return shell_quote(path)
end

local function execute(cmd)
  if dsys and dsys.external_command then return dsys.external_command(cmd) end
  if dt.control and dt.control.execute then return dt.control.execute(cmd) end
  local ok, _, code = os.execute(cmd)
  if ok == true then return 0 end
  return code or 1
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

local function notify(msg)
  if dt.print then dt.print(msg) end
  if dt.print_log then dt.print_log(MODULE .. ": " .. msg) end
end

local function title(label)
  return (label:gsub("^%l", string.upper))
end

-- tag text rules shared with `moodindex tag`: no separators inside a level
local function valid_prefix(prefix)
  return prefix ~= "" and not prefix:find("[,|/\\]")
end

-- ---------------------------------------------------------------------------------------------
-- a small JSON decoder (moodindex classify --format json)
-- ---------------------------------------------------------------------------------------------
local json = {}

local function utf8_char(cp)
  if utf8 and utf8.char then return utf8.char(cp) end
  return "?"
end

function json.decode(text)
  local pos = 1
  local value -- forward declaration

  local function fail(what)
    error(string.format("JSON: %s at byte %d", what, pos), 0)
  end
  local function skip()
    pos = text:find("[^ \t\r\n]", pos) or (#text + 1)
  end
  local function str()
    pos = pos + 1 -- opening quote
    local out = {}
    while true do
      local c = text:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = pos + 1; break end
      if c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        local simple = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
        if simple[e] then
          out[#out + 1] = simple[e]; pos = pos + 2
        elseif e == "u" then
          local cp = tonumber(text:sub(pos + 2, pos + 5), 16)
          if not cp then fail("bad \\u escape") end
          pos = pos + 6
          if cp >= 0xD800 and cp <= 0xDBFF and text:sub(pos, pos + 1) == "\\u" then
            local lo = tonumber(text:sub(pos + 2, pos + 5), 16)
            if lo and lo >= 0xDC00 and lo <= 0xDFFF then
              cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
              pos = pos + 6
            end
          end
          out[#out + 1] = utf8_char(cp)
        else
          fail("bad escape")
        end
      else
        local stop = text:find('["\\]', pos) or (#text + 1)
        out[#out + 1] = text:sub(pos, stop - 1)
        pos = stop
      end
    end
    return table.concat(out)
  end
  local function num()
    local s, e = text:find("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not s then fail("bad number") end
    local n = tonumber(text:sub(s, e))
    if not n then fail("bad number") end
    pos = e + 1
    return n
  end
  function value()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1; skip()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return obj end
      while true do
        skip()
        if text:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        skip()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        obj[k] = value()
        skip()
        local d = text:sub(pos, pos); pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local arr = {}
      pos = pos + 1; skip()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return arr end
      while true do
        arr[#arr + 1] = value()
        skip()
        local d = text:sub(pos, pos); pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif text:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif text:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif text:sub(pos, pos + 3) == "null" then pos = pos + 4; return nil
    elseif c:match("[-%d]") then return num()
    end
    fail("unexpected character '" .. c .. "'")
  end

  local result = value()
  skip()
  if pos <= #text then fail("trailing data") end
  return result
end

-- ---------------------------------------------------------------------------------------------
-- preferences
-- ---------------------------------------------------------------------------------------------
dt.preferences.register(MODULE, "executable", "file", _("moodindex: program"),
  _("path of the moodindex program (or just moodindex when it is on PATH)"), INSTALLED_MOODINDEX)
dt.preferences.register(MODULE, "min_score", "float", _("moodindex: minimum emotion score"),
  _("a face gets its emotion as a tag when the model is at least this sure (0..1)"), 0.5, 0.0, 1.0, 0.05)
dt.preferences.register(MODULE, "prefix", "string", _("moodindex: parent tag"),
  _("emotion tags are attached as PARENT|Happy, PARENT|Sad, ..."), "Emotion")

local function pref(name, kind, default)
  local v = dt.preferences.read(MODULE, name, kind)
  if v == nil or v == "" then return default end
  return v
end

-- the preference, unless it is empty or the bare shipped default, which the installed path replaces
local function executable()
  local exe = pref("executable", "file", INSTALLED_MOODINDEX)
  if exe == "moodindex" then return INSTALLED_MOODINDEX end
  return exe
end

-- ---------------------------------------------------------------------------------------------
-- detect emotions on images and attach tags
-- ---------------------------------------------------------------------------------------------
local function image_path(image)
  return image.path .. "/" .. image.filename
end

local function tags_for(faces, min_score)
  local found = {}
  for _i, face in ipairs(faces or {}) do
    local emotion = face.emotion
    local score = face.score
    if score == nil and type(face.scores) == "table" then score = face.scores[emotion] end
    if emotion and score and score >= min_score then found[emotion] = true end
  end
  local out = {}
  for _i, c in ipairs(CLASSES) do
    if found[c] then out[#out + 1] = c end
  end
  return out
end

-- replace this module's emotion tags (PREFIX|<one of the 7 labels>) on an image
local function set_emotion_tags(image, labels, prefix)
  local wanted = {}
  for _i, label in ipairs(labels) do wanted[prefix .. "|" .. title(label)] = true end
  for _i, c in ipairs(CLASSES) do
    local name = prefix .. "|" .. title(c)
    if not wanted[name] then
      local tag = dt.tags.find(name)
      if tag then dt.tags.detach(tag, image) end
    end
  end
  for name in pairs(wanted) do
    dt.tags.attach(dt.tags.create(name), image)
  end
end

local function run_classify(images, out_file, err_file)
  local parts = { quote_path(executable()), "classify", "--format", "json" }
  for _i, image in ipairs(images) do parts[#parts + 1] = quote_path(image_path(image)) end
  local cmd = table.concat(parts, " ") .. " > " .. quote_path(out_file) .. " 2> " .. quote_path(err_file)
  return execute(cmd)
end

-- returns tagged, failed counts; exposed for tests as script_data.api.detect
local function detect(images)
  local prefix = pref("prefix", "string", "Emotion")
  if not valid_prefix(prefix) then
    notify(_("moodindex: the parent tag must not contain , | / or \\"))
    return 0, #images
  end
  local min_score = tonumber(pref("min_score", "float", 0.5)) or 0.5
  local total, tagged, failed, cancelled = #images, 0, 0, false
  local job = dt.gui.create_job(_("detecting emotions"), true, function() cancelled = true end)
  local out_file, err_file = os.tmpname(), os.tmpname()
  for first = 1, total, BATCH do
    if cancelled then break end
    local batch = {}
    for i = first, math.min(first + BATCH - 1, total) do batch[#batch + 1] = images[i] end
    local by_path = {}
    for _i, image in ipairs(batch) do by_path[image_path(image)] = image end
    local code = run_classify(batch, out_file, err_file)
    local ok, results = pcall(json.decode, read_file(out_file) or "")
    if code ~= 0 or not ok or type(results) ~= "table" then
      local err = (read_file(err_file) or ""):gsub("%s+$", "")
      notify(string.format(_("moodindex failed (exit %s): %s"), tostring(code), err ~= "" and err or tostring(results)))
      failed = failed + #batch
    else
      for i, item in ipairs(results) do
        -- classify answers one record per file, in the order given.  item.path is the name itself,
        -- or, for a name that is not UTF-8 or holds a backslash, its escaped form with the exact
        -- bytes in item.path_bytes_base64: then the position names the image.
        local image = by_path[item.path]
        if not image and item.path_bytes_base64 then image = batch[i] end
        if image and not item.error then
          set_emotion_tags(image, tags_for(item.faces, min_score), prefix)
          tagged = tagged + 1
        else
          failed = failed + 1
        end
      end
    end
    job.percent = math.min(first + BATCH - 1, total) / total
  end
  job.valid = false
  os.remove(out_file)
  os.remove(err_file)
  notify(string.format(_("moodindex: %d images tagged, %d failed"), tagged, failed))
  return tagged, failed
end

-- ---------------------------------------------------------------------------------------------
-- select the images matching a query
-- ---------------------------------------------------------------------------------------------
local function select_matching(text)
  if text == nil or text:match("^%s*$") then
    notify(_("moodindex: type a query first, e.g. happy photos from 2019"))
    return {}
  end
  local out_file, err_file = os.tmpname(), os.tmpname()
  -- the query is not a path: always single-quote it (the lua-scripts helper treats text that
  -- already looks quoted as safe and passes it on unchanged, which would alter the query)
  local cmd = table.concat({ quote_path(executable()), "query", "--format", "paths", "--null", "--limit", "0",
    shell_quote(text) }, " ") .. " > " .. quote_path(out_file) .. " 2> " .. quote_path(err_file)
  local job = dt.gui.create_job(_("moodindex query"), true)
  local code = execute(cmd)
  local wanted, selection = {}, {}
  if code ~= 0 then
    notify(string.format(_("moodindex query failed: %s"), ((read_file(err_file) or ""):gsub("%s+$", ""))))
  else
    for path in (read_file(out_file) or ""):gmatch("([^%z]+)") do wanted[path] = true end
    for _i, image in ipairs(dt.database) do
      if wanted[image_path(image)] then selection[#selection + 1] = image end
    end
    dt.gui.selection(selection)
    notify(string.format(_("moodindex: %d matching images selected"), #selection))
  end
  job.valid = false
  os.remove(out_file)
  os.remove(err_file)
  return selection
end

-- ---------------------------------------------------------------------------------------------
-- GUI: an action in "selected images" and a lighttable panel
-- ---------------------------------------------------------------------------------------------
local ACTION = MODULE .. "_detect"
local gui = {}

local function selected_or_hovered(images)
  if images and #images > 0 then return images end
  return dt.gui.action_images or {}
end

local function install_gui()
  if dt.configuration.has_gui == false then return end
  dt.gui.libs.image.register_action(ACTION, _("detect emotions"),
    function(_event, images) detect(selected_or_hovered(images)) end,
    _("run moodindex on the selected images and attach Emotion tags"))
  gui.query = dt.new_widget("entry") {
    placeholder = _("e.g. happy photos from 2019"),
    tooltip = _("a moodindex query; matching images are selected"),
    editable = true,
  }
  gui.detect = dt.new_widget("button") {
    label = _("detect emotions"),
    clicked_callback = function() detect(dt.gui.action_images or {}) end,
  }
  gui.select = dt.new_widget("button") {
    label = _("select matching"),
    clicked_callback = function() select_matching(gui.query.text) end,
  }
  dt.register_lib(MODULE, _("moodindex"), true, false,
    { [dt.gui.views.lighttable] = { "DT_UI_CONTAINER_PANEL_RIGHT_CENTER", 700 } },
    dt.new_widget("box") { orientation = "vertical", gui.detect, gui.query, gui.select })
end

local function destroy()
  if dt.configuration.has_gui == false then return end
  dt.gui.libs.image.destroy_action(ACTION)
  if dt.gui.libs[MODULE] then dt.gui.libs[MODULE].visible = false end
end

local function restart()
  if dt.configuration.has_gui == false then return end
  dt.gui.libs.image.register_action(ACTION, _("detect emotions"),
    function(_event, images) detect(selected_or_hovered(images)) end,
    _("run moodindex on the selected images and attach Emotion tags"))
  if dt.gui.libs[MODULE] then dt.gui.libs[MODULE].visible = true end
end

install_gui()

-- ---------------------------------------------------------------------------------------------
-- script_manager integration
-- ---------------------------------------------------------------------------------------------
local script_data = {}
script_data.metadata = {
  name = "moodindex",
  purpose = _("tag the emotions on faces and select images by emotion, with moodindex"),
  author = "moodindex contributors",
  help = "https://github.com/moodindex/moodindex/tree/main/plugins/darktable",
}
script_data.destroy = destroy
script_data.destroy_method = "hide"
script_data.restart = restart
script_data.show = restart
-- for tests and other scripts
script_data.api = { detect = detect, select_matching = select_matching, json = json,
  shell_quote = shell_quote, quote_path = quote_path, tags_for = tags_for }

return script_data
