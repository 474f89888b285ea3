# ruby -I STUBS run-handler.rb HANDLER.rb success|failure OPTIONS-JSON
# Runs the provbus report handler once, as Chef would at the end of a run.
require 'json'
require ARGV[0]
opts = JSON.parse(ARGV[2] || '{}', symbolize_names: true)
handler = Provbus::PublishHandler.new(opts)
handler.run_report_safely(Chef::RunStatus.new(ARGV[1] == 'success'))
