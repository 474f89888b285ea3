# provbus_env.rb — read provbus-consumer's env file from Ruby (a Chef
# recipe, a library, an ERB helper) without a shell.
#
#   Provbus::EnvFile.read('/etc/provbus/app.env')  # => {'API_URL' => 'http://...', ...}
#   Provbus::EnvFile.parse(text)
#
# Both formats of consumer.env_format are read:
#   shell    export NAME='value'   (a ' inside is written '\'')
#   systemd  NAME="value"          (systemd.exec(5): \" \\ \` \$ and a
#                                   backslash-newline are escapes, any other
#                                   backslash is kept as it is)
# and, for hand-written files, unquoted values with backslash escapes.
# Nothing is expanded or executed: a value is the text between the quotes.
# Comment lines (# or ;), blank lines and lines without a NAME= are
# skipped; a later line for the same NAME wins, as it would in a shell.
# A variable provbus left out (no provider, no static value) is absent
# from the hash, so use fetch with a default:
#   env.fetch('API_URL', '').split(',')
#
# In a cookbook put this file in libraries/ (Chef loads it before the
# recipes), or require it from where you installed it.
module Provbus
  module EnvFile
    NAME = /\A[A-Za-z_][A-Za-z0-9_]*\z/

    class ParseError < StandardError; end

    def self.read(path)
      parse(File.read(path, encoding: 'UTF-8'), path)
    end

    def self.parse(text, source = '(env file)')
      vars = {}
      s = text
      i = 0
      line = 1
      while i < s.length
        # one assignment per line: skip blanks and comments
        eol = s.index("\n", i) || s.length
        head = s[i...eol]
        stripped = head.lstrip
        if stripped.empty? || stripped.start_with?('#', ';') || !stripped.include?('=')
          i = eol + 1
          line += 1
          next
        end
        eq = head.index('=')
        name = head[0...eq].strip.sub(/\Aexport[ \t]+/, '')
        unless NAME.match?(name)
          raise ParseError, "#{source}:#{line}: '#{name}' is not a variable name"
        end
        i += eq + 1
        value, i, line = value_at(s, i, line, source)
        vars[name] = value
      end
      vars
    end

    # The value starting at s[i] up to its end of line; returns the value,
    # the index after that line, and the line number there.
    def self.value_at(s, i, line, source)
      out = +''
      kept = 0 # out[0...kept] came from quotes or escapes: never trimmed
      i += 1 while i < s.length && [' ', "\t"].include?(s[i])
      while i < s.length && s[i] != "\n"
        c = s[i]
        case c
        when "'"
          close = s.index("'", i + 1) or raise ParseError, "#{source}:#{line}: unterminated single quote"
          seg = s[(i + 1)...close]
          line += seg.count("\n")
          out << seg
          kept = out.length
          i = close + 1
        when '"'
          i += 1
          loop do
            raise ParseError, "#{source}:#{line}: unterminated double quote" if i >= s.length
            c = s[i]
            if c == '"'
              kept = out.length
              i += 1
              break
            elsif c == '\\' && i + 1 < s.length
              n = s[i + 1]
              if n == "\n"
                line += 1
              elsif '"\\`$'.include?(n)
                out << n
              else
                out << c << n
              end
              i += 2
            else
              line += 1 if c == "\n"
              out << c
              i += 1
            end
          end
        when '\\'
          n = s[i + 1]
          if n == "\n"
            line += 1
          elsif n
            out << n
            kept = out.length
          end
          i += 2
        else
          out << c
          i += 1
        end
      end
      # trailing blanks outside quotes are not part of the value
      [out[0...kept] + out[kept..].sub(/[ \t\r]+\z/, ''), i + 1, line + 1]
    end
    private_class_method :value_at
  end
end
