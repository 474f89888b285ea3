# app::default: the app's configuration follows provbus.
#
# provbus-consumer writes the values of the keys this node requires to its
# env file, then runs chef-solo (consumer.provision). This recipe reads the
# file, not the environment: a chef-solo run by hand or by cron has no
# provbus variable in its environment, but the file is always there and
# always the last values provbus applied. Provbus::EnvFile comes from
# libraries/provbus_env.rb (a copy of provbus's deploy/chef/provbus_env.rb).
env_file = node['app']['provbus_env_file']
env = ::File.exist?(env_file) ? Provbus::EnvFile.read(env_file) : {}

# a key with no live provider and no static value is not in the file
api_urls = env.fetch('API_URL', '').split(',')
database_url = env['PRIMARY_DATABASE_URL']

directory ::File.dirname(node['app']['config_file']) do
  mode '0755'
end

template node['app']['config_file'] do
  source 'app.yml.erb'
  mode '0644'
  variables(api_urls: api_urls, database_url: database_url)
  notifies :restart, 'service[app]', :delayed
end

service 'app' do
  action [:enable, :start]
end
