# A stand-in for the mixlib-shellout gem (Chef ships it), tests only:
# Mixlib::ShellOut.new(*argv, timeout:) runs argv without a shell.
require 'open3'
require 'timeout'

module Mixlib
  class ShellOut
    class CommandTimeout < StandardError; end

    attr_reader :stdout, :stderr, :exitstatus

    def initialize(*argv, timeout: 600)
      @argv = argv
      @timeout = timeout
    end

    def run_command
      Timeout.timeout(@timeout, CommandTimeout) do
        @stdout, @stderr, st = Open3.capture3(*@argv)
        @exitstatus = st.exitstatus
      end
      self
    end
  end
end
