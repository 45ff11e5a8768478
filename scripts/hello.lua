-- A tiny workflow that shows the contract: `skafos hello --name you`.
return {
  description = "Print a greeting (an example of a workflow)",
  options = {
    { "--name", "Who to greet", default = "world" },
    { "-n --times", "How many times", type = "integer", default = "1" },
  },
  run = function(_, args)
    for _ = 1, args.times do io.stdout:write("hello, ", args.name, "\n") end
  end,
}
