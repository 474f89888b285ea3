# A stand-in for Chef's own chef/handler, just enough to run
# deploy/chef/provbus_handler.rb without Chef installed (tests only):
# Chef::Handler with run_status, and Chef::Log writing "LEVEL: message"
# lines to stdout.
class Chef
  module Log
    %i[debug info warn error fatal].each do |level|
      define_singleton_method(level) { |msg| puts "#{level.upcase}: #{msg}" }
    end
  end

  class RunStatus
    def initialize(success)
      @success = success
    end

    def success?
      @success
    end

    def failed?
      !@success
    end
  end

  class Handler
    attr_accessor :run_status

    # Chef calls run_report_safely(run_status); so do the tests.
    def run_report_safely(run_status)
      @run_status = run_status
      report
    end
  end
end
