# provbus_handler.rb — a Chef report handler that announces, after every
# successful chef-solo / chef-client run, what this node now provides:
# it runs `provbus-publish provides` (no shell) and logs what it says.
# A failed run announces nothing (the node may be half-configured).
#
# Enable it in solo.rb or client.rb (see docs/chef.md):
#
#   require '/etc/chef/handlers/provbus_handler'
#   report_handlers << Provbus::PublishHandler.new(
#     config: '/etc/provbus/provbus.json')    # all options are optional
#
# Options (all optional):
#   path:    the provbus-publish binary   (default: the installed one, see
#                                          default_path)
#   config:  passed as -c FILE            (default: provbus-publish's own,
#                                          $PROVBUS_CONFIG or /etc/provbus/provbus.json)
#   args:    the arguments after -c       (default ['provides']; e.g.
#                                          ['provides', '--ttl', '1200'] or
#                                          ['provides', 'app-www'])
#   timeout: seconds before the command is killed (default 120)
#
# provbus-publish exits 75 when the broker is away: the events are spooled
# in its outbox and sent by the next run (or the provbus-publish.timer), so
# that is logged as a warning, not an error. A handler never fails the
# Chef run.
require 'chef/handler'
require 'mixlib/shellout'

module Provbus
  class PublishHandler < Chef::Handler
    # where provbus-publish was installed: `make install` and the Debian
    # package write their BINDIR here (/usr/bin for the package)
    INSTALLED = '/usr/local/bin/provbus-publish'

    DEFAULTS = {
      path: nil,
      config: nil,
      args: ['provides'],
      timeout: 120,
    }.freeze

    # sysexits.h, as provbus-publish uses them
    MEANING = {
      64 => 'usage error',
      65 => 'bad manifest or unknown service id',
      66 => 'configuration file missing',
      69 => 'broker unavailable and nothing spooled',
      74 => 'outbox not writable (disk full) and not all confirmed: events lost',
      75 => 'broker away: events spooled, sent by the next run',
      77 => 'refused by the broker (topic permissions)',
      78 => 'configuration error or exchange missing',
    }.freeze

    attr_reader :options

    def initialize(options = {})
      super()
      unknown = options.keys.map(&:to_sym) - DEFAULTS.keys
      raise ArgumentError, "provbus handler: unknown option(s) #{unknown.join(', ')}" unless unknown.empty?
      @options = DEFAULTS.merge(options.transform_keys(&:to_sym))
      @options[:path] ||= self.class.default_path
    end

    # The installed provbus-publish; else the first in PATH, /usr/bin or
    # /usr/local/bin (a handler file copied from the source tree); else
    # INSTALLED, whose absence is then logged when the handler runs.
    def self.default_path
      dirs = [File.dirname(INSTALLED)] + ENV.fetch('PATH', '').split(File::PATH_SEPARATOR) +
             ['/usr/bin', '/usr/local/bin']
      dirs.map { |d| File.join(d, 'provbus-publish') }.find { |p| File.file?(p) && File.executable?(p) } ||
        INSTALLED
    end

    # The argv (no shell: nothing here is ever interpreted by one).
    def command
      cmd = [options[:path]]
      cmd += ['-c', options[:config].to_s] if options[:config]
      cmd + Array(options[:args]).map(&:to_s)
    end

    def report
      return unless run_status.success?

      so = Mixlib::ShellOut.new(*command, timeout: options[:timeout])
      so.run_command
      log_output(so.stdout, :info)
      status = so.exitstatus
      case status
      when 0
        log_output(so.stderr, :info)
        Chef::Log.info("provbus: #{command.join(' ')}: announced")
      when 75
        log_output(so.stderr, :warn)
        Chef::Log.warn("provbus: #{command.join(' ')}: exit 75 (#{MEANING[75]})")
      else
        log_output(so.stderr, :error)
        Chef::Log.error("provbus: #{command.join(' ')}: exit #{status}" \
                        "#{MEANING[status] ? " (#{MEANING[status]})" : ''}")
      end
    rescue Mixlib::ShellOut::CommandTimeout
      Chef::Log.error("provbus: #{command.join(' ')}: killed after #{options[:timeout]} s")
    rescue SystemCallError => e
      Chef::Log.error("provbus: cannot run #{command.first}: #{e.message}")
    end

    private

    def log_output(text, level)
      text.to_s.each_line { |l| Chef::Log.send(level, "provbus: #{l.chomp}") unless l.strip.empty? }
    end
  end
end
